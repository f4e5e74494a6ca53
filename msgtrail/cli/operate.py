"""The operator's commands: `backup`, `restore` and `check` (msgtrail.operate)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import click

from msgtrail.cli.common import (
    data_dir_option,
    database_option,
    fail,
    load_settings,
    migrated_engine,
)
from msgtrail.errors import MsgtrailError


@click.command("backup")
@click.argument("dest", type=click.Path(file_okay=False, path_type=Path))
@data_dir_option
def backup_command(dest, data_dir) -> None:  # type: ignore[no-untyped-def]
    """Copy the embedded store (database, export files, secret key) into the empty
    directory DEST, consistently, while the service runs."""
    from msgtrail.operate import backup

    settings = load_settings(data_dir=data_dir)
    try:
        done = backup.backup(settings, dest)
    except MsgtrailError as exc:
        raise fail(exc) from None
    click.echo(f"backed up {done.apps} app(s), {done.messages:,} message(s), {done.events:,} "
               f"events ({done.database_bytes / 1e6:,.1f} MB) and {done.files} file(s) "
               f"({done.file_bytes / 1e6:,.1f} MB) to {dest} in {done.seconds:.1f} s")
    if done.files_expired_meanwhile:
        click.echo(f"{done.files_expired_meanwhile} file(s) expired while copying; marked "
                   "expired in the backup", err=True)
    if not done.secret_key:
        click.echo("no secret.key in the backup (MSGTRAIL_SECRET_KEY is set, or none was "
                   "made yet): keep that key too, it opens the webhook credentials", err=True)


@click.command("restore")
@click.argument("src", required=False,
                type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--from-replica", "replica_url", default=None, metavar="URL",
              help="Restore the newest state of a Litestream replica (MSGTRAIL_REPLICA_URL) "
                   "instead of a backup directory.")
@click.option("--data-dir", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="An empty (or new) directory to restore into.")
def restore_command(src, replica_url, data_dir) -> None:  # type: ignore[no-untyped-def]
    """Restore a backup made by `msgtrail backup` (SRC), or a replica, into an empty
    data directory, then check everything it holds."""
    from msgtrail.files import open_store
    from msgtrail.operate import backup, check, replica

    if (src is None) == (replica_url is None):
        raise click.UsageError("give a backup directory (SRC) or --from-replica URL")
    from msgtrail.settings import Settings

    settings = Settings(data_dir=data_dir)
    try:
        if src is not None:
            done = backup.restore(src, settings)
            taken = datetime.fromtimestamp(done.created_at, UTC).strftime("%Y-%m-%d %H:%M:%S")
            what = f"the backup of {taken} UTC"
        else:
            replica.restore(replica_url, settings)
            expired = replica.expire_missing_files(settings)
            what = (f"the replica's newest state ({expired} export file(s) it does not hold "
                    "marked expired)")
    except MsgtrailError as exc:
        raise fail(exc) from None
    engine = migrated_engine(settings)
    report = check.check(engine, open_store(settings.resolved_storage_url()))
    click.echo(f"restored {what} into {data_dir}")
    _print_check(report)


@click.command("check")
@data_dir_option
@database_option
def check_command(data_dir, database_url) -> None:  # type: ignore[no-untyped-def]
    """Read every segment, page, job and export file; exit 1 with a report of each
    problem found."""
    from msgtrail.files import open_store
    from msgtrail.operate import check

    settings = load_settings(data_dir=data_dir, database_url=database_url)
    report = check.check(migrated_engine(settings), open_store(settings.resolved_storage_url()),
                         progress=lambda line: click.echo(line, err=True))
    _print_check(report)


def _print_check(report) -> None:  # type: ignore[no-untyped-def]
    click.echo(f"{report.messages:,} message(s): {report.segments:,} segments, "
               f"{report.events:,} events, {report.pages:,} pages; {report.jobs:,} job(s), "
               f"{report.files:,} file(s) ({report.file_bytes / 1e6:,.1f} MB)")
    if report.ok:
        click.echo("no problems found")
        return
    for problem in report.problems:
        click.echo(problem)
    raise click.ClickException(f"{len(report.problems)} problem(s) found")


