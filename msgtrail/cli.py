"""The `msgtrail` command: run the service and workers, manage apps, load demo data.

It starts at once: what a command needs (the database layer, the web stack, the data
stack) is imported inside the command, so `msgtrail --help` and `msgtrail apps list`
load only what they use (bench/cli_start.py measures them).
"""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import click

from msgtrail.clock import now
from msgtrail.errors import MsgtrailError
from msgtrail.ingest import SOURCE_NAMES

if TYPE_CHECKING:
    from msgtrail.settings import Settings


def _settings(create: bool = False, **flags: Any) -> Settings:
    """Settings from MSGTRAIL_* variables, overridden by flags that were given. A
    command that does not `create` one needs an existing embedded database (a typo in
    --data-dir must not answer with an empty list)."""
    from msgtrail.settings import Settings

    settings = Settings(**{k: v for k, v in flags.items() if v is not None})
    if create:
        settings.ensure_data_dir()
    elif settings.database_url is None and not (settings.data_dir / "msgtrail.db").is_file():
        raise click.ClickException(
            f"no msgtrail data in {settings.data_dir}: give --data-dir (or "
            "MSGTRAIL_DATA_DIR) of an existing one; `msgtrail serve`, `msgtrail demo` "
            "and `msgtrail apps create` make a new one")
    return settings


def _engine(settings: Settings, workers: int = 0):  # type: ignore[no-untyped-def]
    """The database, migrated, with connections for `workers` background workers."""
    from msgtrail.db.engine import make_engine, upgrade

    engine = make_engine(settings.resolved_database_url(), workers)
    upgrade(engine)
    return engine


class _Commands(click.Group):
    """Subcommands defined elsewhere, imported only when run (or listed in full)."""

    # name: (module, attribute, its line in the help; a test keeps it the command's own)
    lazy: ClassVar[dict[str, tuple[str, str, str]]] = {
        "export": ("msgtrail.client.cli", "export_command",
                   "Export messages' audience activity, or their history, to files.")}

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted([*super().list_commands(ctx), *self.lazy])

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name in self.lazy:
            import importlib

            module, attribute, _ = self.lazy[name]
            found: click.Command = getattr(importlib.import_module(module), attribute)
            return found
        return super().get_command(ctx, name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """The help's list, without importing the lazy commands for their one line."""
        rows = [(name, self.commands[name].get_short_help_str(formatter.width - 20))
                for name in self.commands if not self.commands[name].hidden]
        rows += [(name, help_line) for name, (_, _, help_line) in self.lazy.items()]
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(sorted(rows))


data_dir_option = click.option("--data-dir", type=click.Path(file_okay=False), default=None,
                               help="Where msgtrail keeps its data [env MSGTRAIL_DATA_DIR; "
                                    "default ./msgtrail-data].")
database_option = click.option("--database-url", default=None,
                               help="SQLAlchemy URL [env MSGTRAIL_DATABASE_URL; default "
                                    "SQLite in the data dir].")


@click.group(cls=_Commands)
@click.option("--log-level", default="info", show_default=True, envvar="MSGTRAIL_LOG_LEVEL")
@click.option("--log-format", type=click.Choice(["console", "json"]), default="console",
              show_default=True, envvar="MSGTRAIL_LOG_FORMAT",
              help="Lines of text, or one JSON object per line for a log collector.")
def main(log_level: str, log_format: str) -> None:
    """msgtrail: per-recipient message activity and its exports."""
    from msgtrail.runtime import logs

    logs.configure(log_level, log_format)
    # `serve --processes N` starts processes that configure their logging from these.
    os.environ["MSGTRAIL_LOG_LEVEL"], os.environ["MSGTRAIL_LOG_FORMAT"] = log_level, log_format


# The commands that move activity (serve, worker, import, demo) import the data stack
# and tune the allocators inside; the others (apps, db, webhooks) start without them.
def _data_process() -> None:
    from msgtrail.runtime import allocators

    allocators.bound()


def _metrics(settings: Settings) -> None:
    """This process's metrics in the machine's metrics directory (before anything
    imports prometheus_client), its memory watched, its live gauges dropped at exit."""
    import atexit

    from msgtrail.runtime import metrics_dir

    metrics_dir.prepare(settings.resolved_metrics_dir())
    from msgtrail.runtime import metrics

    metrics.watch_memory()
    atexit.register(metrics.process_exit)


def _exit_quietly(*_: object) -> None:
    raise SystemExit(0)


def _serve(settings: Settings, workers: int | None, processes: int = 1) -> None:
    import uvicorn

    _data_process()
    _metrics(settings)
    from msgtrail.web.app import create_app, served

    if workers is not None:
        settings.workers = workers
    engine = _engine(settings, settings.workers)
    from msgtrail.operate import replica

    try:
        replicating = replica.start(settings)  # one Litestream, in this (the parent) process
    except MsgtrailError as exc:
        raise _fail(exc) from None
    # uvicorn raises the signals it caught again once it has stopped, under the
    # handlers it found: these end the process through the `finally` below (Litestream
    # told to stop, exit status 0) instead of the default's death by SIGTERM.
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, _exit_quietly)
    try:
        if processes > 1:
            # Each process builds its own app from the environment; pass the settings on.
            for name, value in settings.model_dump().items():
                if value is not None:
                    os.environ[f"MSGTRAIL_{name.upper()}"] = str(value)
            uvicorn.run("msgtrail.web.app:app_from_env", factory=True, workers=processes,
                        host=settings.host, port=settings.port, log_level="warning",
                        log_config=None, access_log=False)
            return
        app = served(create_app(settings, engine))
        uvicorn.run(app, host=settings.host, port=settings.port, log_level="warning",
                    log_config=None, access_log=False)
    finally:
        replica.stop(replicating)  # after the last write: it ships the rest of the WAL


@main.command()
@click.option("--host", default=None, help="Address to listen on [default 127.0.0.1].")
@click.option("--port", type=int, default=None, help="Port [default 8000].")
@click.option("--workers", type=int, default=None,
              help="In-process background workers [default 1; 0 for an API-only process].")
@click.option("--processes", type=int, default=1, show_default=True,
              help="API processes sharing the port (each with its own workers).")
@click.option("--public-url", default=None, help="Base of URLs handed to clients.")
@data_dir_option
@database_option
def serve(host, port, workers, processes, public_url, data_dir, database_url) -> None:  # type: ignore[no-untyped-def]
    """Run the HTTP API (and background workers)."""
    settings = _settings(True, host=host, port=port, public_url=public_url, data_dir=data_dir,
                         database_url=database_url)
    click.echo(f"msgtrail listening on http://{settings.host}:{settings.port}", err=True)
    _serve(settings, workers, processes)


@main.command()
@click.option("--concurrency", type=int, default=1, show_default=True,
              help="Worker threads in this process.")
@click.option("--probe-port", type=int, default=None, envvar="MSGTRAIL_PROBE_PORT",
              help="Answer /livez, /readyz and /metrics on this port (at MSGTRAIL_HOST) "
                   "[env MSGTRAIL_PROBE_PORT; default: none].")
@data_dir_option
@database_option
def worker(concurrency, probe_port, data_dir, database_url) -> None:  # type: ignore[no-untyped-def]
    """Run background workers without the API."""
    _data_process()

    settings = _settings(True, data_dir=data_dir, database_url=database_url)
    _metrics(settings)
    from msgtrail.files import open_store
    from msgtrail.runtime.worker import Worker, run_until_stopped

    engine = _engine(settings, concurrency)
    from msgtrail.runtime import metrics

    metrics.watch_pool(engine)
    store = open_store(settings.resolved_storage_url())
    pool = [Worker(settings, engine, store, name=f"worker-{i}") for i in range(concurrency)]
    if probe_port is not None:
        from msgtrail.runtime import readiness

        readiness.serve_probes(
            probe_port, settings.host,
            lambda: readiness.problems(engine, store, [w for w in map(Worker.stalled, pool)
                                                       if w]),
            lambda: metrics.exposition(engine, settings.activity_retention_days))
    click.echo(f"msgtrail worker running ({concurrency} threads)", err=True)
    run_until_stopped(pool, settings.shutdown_grace_seconds)


@main.group()
def db() -> None:
    """Database maintenance."""


@db.command("upgrade")
@data_dir_option
@database_option
def db_upgrade(data_dir, database_url) -> None:  # type: ignore[no-untyped-def]
    """Apply migrations to the database."""
    _engine(_settings(True, data_dir=data_dir, database_url=database_url))
    click.echo("database is up to date")


@main.group()
def apps() -> None:
    """Apps and their API keys."""


def _engine_and_app(app_id: str, data_dir, database_url):  # type: ignore[no-untyped-def]
    """One engine, and the app it holds under app_id (a clean error if none)."""
    from msgtrail import apps as apps_mod

    engine = _engine(_settings(data_dir=data_dir, database_url=database_url))
    try:
        with engine.connect() as conn:
            return engine, apps_mod.get_app(conn, app_id)
    except MsgtrailError as exc:
        raise click.ClickException("; ".join(exc.messages)) from None


def _run(fn, data_dir, database_url, create=False):  # type: ignore[no-untyped-def]
    """`fn` on a connection in a transaction of the database the options name."""
    engine = _engine(_settings(create, data_dir=data_dir, database_url=database_url))
    try:
        with engine.begin() as conn:
            return fn(conn)
    except MsgtrailError as exc:
        raise click.ClickException("; ".join(exc.messages)) from None


@apps.command("create")
@click.option("--name", required=True, help="A name for the app.")
@click.option("--account", default="default", show_default=True,
              help="Account the app belongs to (one concurrent export per account).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@data_dir_option
@database_option
def apps_create(name, account, as_json, data_dir, database_url) -> None:  # type: ignore[no-untyped-def]
    """Create an app; prints its app_id and API key (the key is shown only once)."""
    from msgtrail import apps as apps_mod

    app, key = _run(lambda c: apps_mod.create_app(c, name, account), data_dir, database_url,
                    create=True)
    if as_json:
        click.echo(json.dumps({"app_id": app.app_id, "api_key": key, "account": account}))
    else:
        click.echo(f"app_id:  {app.app_id}\napi_key: {key}\naccount: {account}\n"
                   "Keep the key now: only its hash is stored.")


@apps.command("list")
@click.option("--json", "as_json", is_flag=True)
@data_dir_option
@database_option
def apps_list(as_json, data_dir, database_url) -> None:  # type: ignore[no-untyped-def]
    """List apps."""
    from msgtrail import apps as apps_mod

    rows = _run(apps_mod.list_apps, data_dir, database_url)
    items = [{"app_id": a.app_id, "name": a.name, "account": a.account,
              "history": a.history_enabled, "active_keys": n} for a, n in rows]
    if as_json:
        click.echo(json.dumps(items))
        return
    for item in items:
        click.echo(f"{item['app_id']}  {item['account']:<16} keys={item['active_keys']} "
                   f"history={'on' if item['history'] else 'off'}  {item['name']}")


@apps.command("rotate-key")
@click.argument("app_id")
@click.option("--json", "as_json", is_flag=True)
@data_dir_option
@database_option
def apps_rotate(app_id, as_json, data_dir, database_url) -> None:  # type: ignore[no-untyped-def]
    """Issue a new API key and revoke the app's previous ones."""
    from msgtrail import apps as apps_mod

    key = _run(lambda c: apps_mod.rotate_key(c, app_id), data_dir, database_url)
    click.echo(json.dumps({"app_id": app_id, "api_key": key}) if as_json else f"api_key: {key}")


@apps.command("revoke-key")
@click.argument("app_id")
@click.option("--key-prefix", default=None, help="Revoke only the key starting with this.")
@data_dir_option
@database_option
def apps_revoke(app_id, key_prefix, data_dir, database_url) -> None:  # type: ignore[no-untyped-def]
    """Revoke the app's API keys (all, or one by its first characters)."""
    from msgtrail import apps as apps_mod

    n = _run(lambda c: apps_mod.revoke_keys(c, app_id, key_prefix), data_dir, database_url)
    click.echo(f"revoked {n} key(s)")


@apps.command("update")
@click.argument("app_id")
@click.option("--history", type=click.Choice(["on", "off"]), default=None,
              help='"Send History via API": allow POST /notifications/{id}/history.')
@click.option("--webhook-url", default=None,
              help="Where msgtrail POSTs when an export of the app is ready, failed or "
                   "expired (http or https); '' removes it.")
@click.option("--rotate-webhook-secret", is_flag=True,
              help="Issue a new signing secret (the old one stops signing at once).")
@click.option("--json", "as_json", is_flag=True,
              help='Print {"app_id": ..., "webhook_url": ..., "webhook_secret": ...}.')
@data_dir_option
@database_option
def apps_update(app_id, history, webhook_url, rotate_webhook_secret, as_json, data_dir,  # type: ignore[no-untyped-def]
                database_url) -> None:
    """Change an app's settings. A webhook's signing secret is printed once, when it
    is issued (with the first URL, or --rotate-webhook-secret)."""
    if history is None and webhook_url is None and not rotate_webhook_secret:
        raise click.UsageError("nothing to change: give --history, --webhook-url or "
                               "--rotate-webhook-secret")
    settings = _settings(data_dir=data_dir, database_url=database_url)
    if webhook_url:
        try:
            from msgtrail.notify import export_webhooks

            export_webhooks.check_url(webhook_url, settings.webhook_allow_private)
        except MsgtrailError as exc:
            raise click.BadParameter("; ".join(exc.messages),
                                     param_hint="--webhook-url") from None

    from msgtrail import apps as apps_mod
    from msgtrail.vault import Vault

    def change(conn):  # type: ignore[no-untyped-def]
        if history is not None:
            apps_mod.set_history(conn, app_id, history == "on")
        url, secret = apps_mod.set_webhook(conn, Vault(settings), app_id, webhook_url,
                                           rotate_webhook_secret)
        return apps_mod.get_app(conn, app_id), url, secret

    app, url, secret = _run(change, data_dir, database_url)
    if as_json:
        click.echo(json.dumps({"app_id": app.app_id, "webhook_url": url,
                               "webhook_secret": secret}))
        return
    click.echo(f"{app.app_id}: history={'on' if app.history_enabled else 'off'} "
               f"webhook={url or 'none'}")
    if secret:
        click.echo(f"webhook secret: {secret}\nKeep it now: it is not shown again. Check "
                   "each request's Msgtrail-Signature with msgtrail.client.verify_webhook.")


@apps.command("connect")
@click.argument("app_id")
@click.argument("source", type=click.Choice(SOURCE_NAMES))
@click.option("--public-key", default=None, help="sendgrid: the Signed Event Webhook "
              "verification key (base64 DER).")
@click.option("--auth-token", default=None, help="twilio: the account's Auth Token.")
@click.option("--signing-key", default=None, help="mailgun: the HTTP webhook signing key.")
@click.option("--password", default=None, help="postmark: the basic auth password "
              "[default: generated].")
@click.option("--topic-arn", "topic_arns", multiple=True,
              help="ses: an SNS topic ARN whose notifications are accepted (repeatable).")
@click.option("--public-url", default=None, help="Base of the URL providers call "
              "[env MSGTRAIL_PUBLIC_URL].")
@click.option("--json", "as_json", is_flag=True, help='Print {"source": ..., "url": ...}.')
@data_dir_option
@database_option
def apps_connect(app_id, source, public_key, auth_token, signing_key, password, topic_arns,  # type: ignore[no-untyped-def]
                 public_url, as_json, data_dir, database_url) -> None:
    """Take a provider's webhooks for an app; prints the URL to give the provider.

    The credential is stored encrypted and never shown again."""
    settings = _settings(data_dir=data_dir, database_url=database_url, public_url=public_url)
    from msgtrail.ingest import connections
    from msgtrail.vault import Vault

    vault = Vault(settings)
    _, credential = _run(lambda c: connections.connect(
        c, vault, app_id, source, public_key=public_key, auth_token=auth_token,
        signing_key=signing_key, password=password, topic_arns=topic_arns),
        data_dir, database_url)
    url = connections.webhook_url(settings.resolved_public_url(), source, app_id, credential)
    if as_json:
        click.echo(json.dumps({"source": source, "url": url}))
    else:
        click.echo(f"{url}\n{connections.HINTS[source]}")
    if _local(settings.resolved_public_url()):
        click.echo(f"Warning: {settings.resolved_public_url()} is not reachable from the "
                   "internet, so the provider cannot call this URL. Give --public-url (or set "
                   "MSGTRAIL_PUBLIC_URL) to the address it can reach, then run this again.",
                   err=True)


def _local(url: str) -> bool:
    """Whether a URL names this machine or a private network, which no provider reaches."""
    import ipaddress
    from urllib.parse import urlsplit

    host = urlsplit(url).hostname or ""
    if host == "localhost" or host.endswith((".localhost", ".local", ".internal")):
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    return not address.is_global


@apps.command("disconnect")
@click.argument("app_id")
@click.argument("source", type=click.Choice(SOURCE_NAMES))
@data_dir_option
@database_option
def apps_disconnect(app_id, source, data_dir, database_url) -> None:  # type: ignore[no-untyped-def]
    """Stop taking a provider's webhooks for an app, and forget its credential."""
    from msgtrail.ingest import connections

    removed = _run(lambda c: connections.disconnect(c, app_id, source), data_dir, database_url)
    click.echo(f"{source}: {'disconnected' if removed else 'was not connected'}")


@main.group()
def webhooks() -> None:
    """Provider webhooks."""


@webhooks.command("rejected")
@click.argument("app_id")
@click.option("--source", type=click.Choice(SOURCE_NAMES), default=None)
@click.option("--limit", type=click.IntRange(1, 1000), default=50, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print the page as JSON.")
@data_dir_option
@database_option
def webhooks_rejected(app_id, source, limit, as_json, data_dir, database_url) -> None:  # type: ignore[no-untyped-def]
    """Webhook events that could not be attributed to a message, newest first."""
    engine, app = _engine_and_app(app_id, data_dir, database_url)
    from msgtrail.ingest import intake

    page = intake.rejections(engine, app.pk, source, limit, 0)
    if as_json:
        click.echo(json.dumps(page))
        return
    click.echo(f"{page['total_count']} rejected event(s)")
    for item in page["rejections"]:
        click.echo(f"{item['id']:>6}  {item['source']:<9} {item['message_id'] or '-':<36}  "
                   f"{item['reason']}")


@main.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--app-id", required=True, help="The app the message belongs to.")
@click.option("--message-id", default=None, help="The message [default: the id in "
              "OneSignal's file name, else one derived from the file].")
@click.option("--json", "as_json", is_flag=True, help="Print what was imported as JSON.")
@data_dir_option
@database_option
def import_command(file, app_id, message_id, as_json, data_dir, database_url) -> None:  # type: ignore[no-untyped-def]
    """Load a OneSignal audience-activity CSV (.csv or .csv.gz) as a message's events."""
    from msgtrail.ingest.importer import import_file

    _data_process()
    _metrics(_settings(data_dir=data_dir, database_url=database_url))
    from msgtrail.runtime import metrics

    engine, app = _engine_and_app(app_id, data_dir, database_url)
    try:
        done = import_file(engine, app, file, message_id, now())
    except MsgtrailError as exc:
        raise click.ClickException("; ".join(exc.messages)) from None
    metrics.EVENTS_ACCEPTED.labels("import").inc(done.events)
    if as_json:
        click.echo(json.dumps(dataclasses.asdict(done)))
        return
    click.echo(f"message {done.message_id} ({done.channel}, "
               f"{'created' if done.created else 'existing'}): {done.recipients:,} "
               f"recipients, {done.events:,} events")
    if done.without_events:
        click.echo(f"{done.without_events:,} row(s) had no event time and add nothing",
                   err=True)


def _fail(exc: MsgtrailError) -> click.ClickException:
    return click.ClickException("; ".join(exc.messages))


@main.command("backup")
@click.argument("dest", type=click.Path(file_okay=False, path_type=Path))
@data_dir_option
def backup_command(dest, data_dir) -> None:  # type: ignore[no-untyped-def]
    """Copy the embedded store (database, export files, secret key) into the empty
    directory DEST, consistently, while the service runs."""
    from msgtrail.operate import backup

    settings = _settings(data_dir=data_dir)
    try:
        done = backup.backup(settings, dest)
    except MsgtrailError as exc:
        raise _fail(exc) from None
    click.echo(f"backed up {done.apps} app(s), {done.messages:,} message(s), {done.events:,} "
               f"events ({done.database_bytes / 1e6:,.1f} MB) and {done.files} file(s) "
               f"({done.file_bytes / 1e6:,.1f} MB) to {dest} in {done.seconds:.1f} s")
    if done.files_expired_meanwhile:
        click.echo(f"{done.files_expired_meanwhile} file(s) expired while copying; marked "
                   "expired in the backup", err=True)
    if not done.secret_key:
        click.echo("no secret.key in the backup (MSGTRAIL_SECRET_KEY is set, or none was "
                   "made yet): keep that key too, it opens the webhook credentials", err=True)


@main.command("restore")
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
        raise _fail(exc) from None
    engine = _engine(settings)
    report = check.check(engine, open_store(settings.resolved_storage_url()))
    click.echo(f"restored {what} into {data_dir}")
    _print_check(report)


@main.command("check")
@data_dir_option
@database_option
def check_command(data_dir, database_url) -> None:  # type: ignore[no-untyped-def]
    """Read every segment, page, job and export file; exit 1 with a report of each
    problem found."""
    from msgtrail.files import open_store
    from msgtrail.operate import check

    settings = _settings(data_dir=data_dir, database_url=database_url)
    report = check.check(_engine(settings), open_store(settings.resolved_storage_url()),
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


@main.command()
@click.option("--recipients", type=int, default=100_000, show_default=True,
              help="Recipients across the demo messages.")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=int, default=8000, show_default=True)
@click.option("--workers", type=int, default=None,
              help="In-process background workers [default 1; 0 for an API-only process].")
@data_dir_option
def demo(recipients, host, port, workers, data_dir) -> None:  # type: ignore[no-untyped-def]
    """Load demo data (an app, its key, push/email/SMS messages) and serve it."""
    from msgtrail.demo import create_demo, instructions, invoked_as

    _data_process()

    settings = _settings(True, host=host, port=port, data_dir=data_dir)
    engine = _engine(settings)  # loads the demo data; `serve` makes its own
    click.echo(f"Creating demo data for {recipients:,} recipients…", err=True)
    info = create_demo(engine, recipients)
    base = settings.resolved_public_url()
    click.echo(instructions(info, base, invoked_as()))
    sys.stdout.flush()
    _serve(settings, workers)
