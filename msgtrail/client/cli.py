"""`msgtrail export`: the client on the command line, with a live progress display."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

import click

from msgtrail.client._base import DEFAULT_BASE_URL
from msgtrail.client._client import Client
from msgtrail.client._exceptions import (
    APIError,
    ClientError,
    DeadlineExceededError,
    DownloadError,
    ExportFailedError,
)
from msgtrail.client._models import ExportResult, Progress

# Exit codes, as docs/client.md documents them.
EXIT_OK, EXIT_ERROR, EXIT_REFUSED, EXIT_FAILED, EXIT_DEADLINE, EXIT_DOWNLOAD = 0, 1, 3, 4, 5, 6


def exit_code(exc: Exception) -> int:
    if isinstance(exc, APIError):
        return EXIT_REFUSED
    if isinstance(exc, ExportFailedError):
        return EXIT_FAILED
    if isinstance(exc, DeadlineExceededError):
        return EXIT_DEADLINE
    if isinstance(exc, DownloadError):
        return EXIT_DOWNLOAD
    return EXIT_ERROR


class PlainLines:
    """Progress for logs and pipes: a line per phase, and at most one every 5 s within."""

    def __init__(self, label: str) -> None:
        self.label, self.phase, self.last = label, "", 0.0

    def __call__(self, p: Progress) -> None:
        now = time.monotonic()
        if p.phase == self.phase and now - self.last < 5:
            return
        self.phase, self.last = p.phase, now
        click.echo(f"{self.label}: {describe(p)}", err=True)

    def close(self) -> None:
        pass


class LiveBar:
    """Progress on a terminal: phase, rows or bytes, and the time left."""

    def __init__(self, label: str) -> None:
        from rich.progress import BarColumn, TextColumn, TimeRemainingColumn
        from rich.progress import Progress as Bar

        self.bar = Bar(TextColumn("{task.description}"), BarColumn(),
                       TextColumn("{task.fields[detail]}"), TimeRemainingColumn(),
                       transient=False)
        self.label = label
        self.bar.start()
        self.task = self.bar.add_task(label, total=None, detail="")

    def __call__(self, p: Progress) -> None:
        done, total = ((p.rows, p.total_rows) if p.phase == "waiting" or p.bytes is None
                       else (p.bytes, p.total_bytes))
        self.bar.update(self.task, description=f"{self.label} {p.phase}", completed=done or 0,
                        total=total, detail=describe(p, with_phase=False))

    def close(self) -> None:
        self.bar.stop()


def describe(p: Progress, with_phase: bool = True) -> str:
    parts = [p.phase] if with_phase else []
    if p.rows is not None:
        parts.append(f"{p.rows:,}" + (f"/{p.total_rows:,}" if p.total_rows else "") + " rows")
    if p.bytes is not None:
        parts.append(f"{p.bytes / 1e6:,.1f}"
                     + (f"/{p.total_bytes / 1e6:,.1f}" if p.total_bytes else "") + " MB")
    return " ".join(parts)


@click.command("export",
               short_help="Export messages' audience activity, or their history, to files.")
@click.argument("message_ids", nargs=-1)
@click.option("--app-id", default=None, envvar="MSGTRAIL_APP_ID",
              help="The app's id [env MSGTRAIL_APP_ID].")
@click.option("--app", "app", default=None, metavar="APP_ID",
              help="msgtrail: export the app's activity, one row per event, of every "
                   "message (or of MESSAGE_IDS); see --cursor-file.")
@click.option("--api-key", required=True, envvar=["MSGTRAIL_API_KEY", "ONESIGNAL_REST_API_KEY"],
              help="The app's REST API key [env MSGTRAIL_API_KEY or ONESIGNAL_REST_API_KEY].")
@click.option("--base-url", default=DEFAULT_BASE_URL, show_default=True,
              envvar="MSGTRAIL_BASE_URL", help="OneSignal, or your msgtrail server.")
# A string, not a Path: Path("exports/") drops the slash that says "a directory".
@click.option("-o", "--output", type=click.Path(), default=".",
              help="File to write (one message), or directory (an existing one, or a name "
                   "ending in /, created) [default: here, under the server's file name].")
@click.option("--events", default=None, help="Only recipients (with --app: events) with "
                                             "these events, e.g. clicked,failed.")
@click.option("--since", default=None, help="With --app: events at or after this time "
                                            "(unix seconds or ISO 8601).")
@click.option("--until", default=None, help="With --app: events before this time.")
@click.option("--cursor-file", type=click.Path(dir_okay=False), default=None,
              help="With --app: read the cursor from this file (if it exists) and, once "
                   "the file is safely written, store the next one there: run it from cron "
                   "and each event is exported once.")
@click.option("--history", type=click.Choice(["sent", "clicked"]), default=None,
              help="Export message history (who was sent / who clicked) instead.")
@click.option("--email", default=None, help="With --history: also email the report there.")
@click.option("--decompress", is_flag=True, help="Write the file uncompressed.")
@click.option("--format", "fmt", type=click.Choice(["csv", "jsonl", "parquet"]), default="csv",
              show_default=True, help="Parquet has typed columns (times as timestamps); "
                                      "jsonl needs --app.")
@click.option("--deadline", type=float, default=3600, show_default=True,
              help="Seconds each export may take in all, waits for 429/503 included.")
@click.option("--csv-raw", is_flag=True,
              help="Keep cells that begin with = + - @ as they are (by default the server "
                   "prefixes them with ' so that spreadsheets do not run them as formulas).")
@click.option("--quiet", "-q", is_flag=True, help="Print nothing but errors.")
def export_command(message_ids, app_id, app, api_key, base_url, output, events, since, until,  # type: ignore[no-untyped-def]
                   cursor_file, history, email, decompress, fmt, deadline, csv_raw,
                   quiet) -> None:
    """Export messages' audience activity (or history) to files, one after another:
    request, wait out rate limits, poll, download, verify. With --app, msgtrail's
    app-level export of every event instead."""
    if app:
        if history or email or csv_raw:
            raise click.UsageError("--history, --email and --csv-raw do not apply to --app")
        if app_id and app_id != app:
            raise click.UsageError("--app and --app-id name different apps")
        with Client(api_key, app, base_url, deadline=deadline) as client:
            sys.exit(_export_app(client, list(message_ids), output, events, since, until,
                                 cursor_file, fmt, decompress, quiet))
    if since or until or cursor_file:
        raise click.UsageError("--since, --until and --cursor-file apply to --app")
    if not message_ids:
        raise click.UsageError("give MESSAGE_IDS, or --app for the app's activity")
    if not app_id:
        raise click.UsageError("--app-id (or MSGTRAIL_APP_ID) is required")
    if fmt == "jsonl":
        raise click.UsageError("--format jsonl needs --app (message exports are CSV)")
    if events and history:
        raise click.UsageError("--events applies to audience activity, not --history")
    if email and not history:
        raise click.UsageError("--email applies to --history")
    if len(message_ids) > 1:
        Path(output).mkdir(parents=True, exist_ok=True)
    first_failure = EXIT_OK
    with Client(api_key, app_id, base_url, deadline=deadline) as client:
        for message_id in message_ids:
            code = _export_one(client, message_id, output, events, history, email, decompress,
                               fmt, csv_raw, quiet)
            first_failure = first_failure or code
    sys.exit(first_failure)


def _moment(value: str | None) -> int | str | None:
    return int(value) if value is not None and value.isdigit() else value


def _export_app(client: Client, message_ids: list[str], output: str, events: str | None,
                since: str | None, until: str | None, cursor_file: str | None, fmt: str,
                decompress: bool, quiet: bool) -> int:
    """The app-level export; the cursor file moves on only once the file is in place,
    so a failed run is simply run again."""
    cursor_path = Path(cursor_file) if cursor_file else None
    cursor = (cursor_path.read_text().strip() or None
              if cursor_path is not None and cursor_path.exists() else None)
    result = _run(
        "activity", "activity", quiet,
        lambda display: client.export_activity(
            output, message_ids=message_ids or None, events=events, since=_moment(since),
            until=_moment(until), cursor=cursor, format=fmt, decompress=decompress,
            on_progress=display))
    if isinstance(result, int):
        return result
    if cursor_path is not None and result.next_cursor:
        tmp = cursor_path.with_name(f".{cursor_path.name}.tmp")
        tmp.write_text(result.next_cursor + "\n")
        os.replace(tmp, cursor_path)
    if not quiet:
        click.echo(f"{result.path}\t{result.rows} rows\t{result.bytes} bytes\t"
                   f"{result.elapsed:.1f} s\tnext_cursor={result.next_cursor}")
    return EXIT_OK


def _export_one(client: Client, message_id: str, output: str, events: str | None,
                history: str | None, email: str | None, decompress: bool, fmt: str,
                csv_raw: bool, quiet: bool) -> int:
    if history:
        result = _run(message_id[:8], message_id, quiet, lambda display: client.export_history(
            message_id, output, history, email=email, format=fmt, csv_raw=csv_raw,
            on_progress=display))
    else:
        result = _run(message_id[:8], message_id, quiet,
                      lambda display: client.export_audience_activity(
                          message_id, output, events, decompress=decompress, format=fmt,
                          csv_raw=csv_raw, on_progress=display))
    if isinstance(result, int):
        return result
    if not quiet:
        click.echo(f"{result.path}\t{result.rows} rows\t{result.bytes} bytes\t"
                   f"{result.elapsed:.1f} s")
    return EXIT_OK


def _run(label: str, name: str, quiet: bool,
         start: Callable[[Callable[[Progress], None] | None], ExportResult]) -> ExportResult | int:
    """One export with its progress display (none when quiet; a live bar on a
    terminal, else plain lines): its result, or the exit code when it failed."""
    display = None if quiet else LiveBar(label) if sys.stderr.isatty() else PlainLines(label)
    try:
        return start(display)
    except ClientError as exc:
        click.echo(f"{name}: {exc}", err=True)
        return exit_code(exc)
    finally:
        if display is not None:
            display.close()
