"""The export pipeline: a message's recipients, streamed as CSV into the store.

The message's recipients are read a range of ids at a time (`msgtrail.recipients`:
the next range read from the store, the current one pivoted by DuckDB, the one before
turned into lines by Arrow, each on its own thread), while ISA-L gzip compresses on two
others: all release the GIL, so both cores work, and memory stays within a few ranges
and DuckDB's limit whatever the audience size. A history report is the same read with
its own line and no compression.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Iterator
from contextlib import closing, nullcontext
from dataclasses import dataclass, field
from typing import Any, BinaryIO

from isal import igzip_threaded
from sqlalchemy import Engine, text

from msgtrail import activity, csv_schema, history_csv, recipients
from msgtrail.ahead import Ahead
from msgtrail.jobs import Job
from msgtrail.settings import Settings
from msgtrail.storage import BlobStore

COMPRESS_LEVEL = 1
COMPRESS_THREADS = 2


class LeaseLost(Exception):
    """The job was taken over by another worker; this attempt stops writing."""


@dataclass
class Progress:
    """Shared between the pipeline and the worker's heartbeat thread."""

    rows: int = 0
    total: int | None = None
    # Set when the lease was lost or the worker is stopping: the attempt stops writing.
    lost: threading.Event = field(default_factory=threading.Event)
    # Set when the attempt has ended, whichever way.
    done: threading.Event = field(default_factory=threading.Event)


def rows_from_totals(totals: dict[str, int], events: list[str]) -> int | None:
    """Rows an export of these events writes, from the message's per-event counters; None
    when it cannot tell (several events: recipients may have more than one)."""
    if len(events) > 1:
        return None
    return int(totals.get(events[0] if events else "recipients", 0))


def known_total(engine: Engine, message_pk: int, events: list[str]) -> int | None:
    """Rows the export will write, if the counters are current and tell it (None:
    the file's own count will)."""
    with engine.connect() as conn:
        stats, pending = conn.execute(text(
            "SELECT stats, pending_since FROM messages WHERE id = :pk"),
            {"pk": message_pk}).one()
        conn.rollback()
    if pending is not None or not stats:
        return None
    return rows_from_totals(json.loads(stats)["totals"], events)


@dataclass(frozen=True)
class Report:
    """What a job writes: which recipients, each as which line, under which header."""

    header: bytes
    line: recipients.LineBuilder
    events: list[str]  # only recipients with one of these events; empty: all
    gzip: bool
    columns: list[dict[str, str]]  # name and type of each column, for the manifest


def selected_events(kind: str, params: dict) -> list[str]:
    """A job writes the recipients with one of these events (empty: all of them)."""
    if kind == "history":
        return [params["events"]]
    return list(params.get("events") or [])


def report_for(job: Job, channel: str) -> Report:
    events = selected_events(job.kind, job.params)
    raw = bool(job.params.get("csv_raw"))
    if job.kind == "export":
        times = csv_schema.event_columns(channel)
        return Report(csv_schema.header(channel), recipients.export_line(channel, raw),
                      events, True,
                      [{"name": c, "type": "timestamp" if c in times else "string"}
                       for c in csv_schema.columns(channel)])
    if job.kind == "history":
        return Report(history_csv.HEADER,
                      lambda table: history_csv.lines(table, channel, events[0], raw),
                      events, False, history_csv.COLUMNS)
    raise ValueError(f"unknown job kind {job.kind!r}")


def _chunks(raw: object, job: Job, channel: str, report: Report,
            progress: Progress) -> Iterator[tuple[bytes, int]]:
    """An export reads the message's pages if they hold everything the snapshot sees
    or are behind by a few events (its total then stays unknown until the end); anything
    else pivots."""
    pages = (recipients.recipient_pages(raw, job.message_pk, channel)
             if job.kind == "export" else None)
    if pages is not None:
        return recipients.page_lines(pages, report.events, bool(job.params.get("csv_raw")))

    def counted(total: int) -> None:
        progress.total = total

    return recipients.lines(raw, job.message_pk, channel, report.line, report.events, counted)


def manifest(job: Job, message_id: str, report: Report, rows: int, size: int,
             sha256: str) -> dict[str, Any]:
    """What the file holds (`jobs.finish` adds its times): clients check `rows` and
    `sha256` against what they downloaded."""
    return {"export_id": job.export_id, "format": "csv",
            "compression": "gzip" if report.gzip else "none", "columns": report.columns,
            "rows": rows, "bytes": size, "sha256": sha256,
            "filter": {"message_ids": [message_id], "events": report.events,
                       "since": None, "until": None},
            "cursor": None, "next_cursor": None}


class _Digest:
    """A writable that hashes what passes through it to the store's writer (the
    compressor writes from one thread at a time, in order)."""

    def __init__(self, raw: BinaryIO) -> None:
        self._raw = raw
        self.hash = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> int:
        self.hash.update(data)
        self.size += len(data)
        return self._raw.write(data)

    def flush(self) -> None:
        self._raw.flush()


def run_job(engine: Engine, store: BlobStore, job: Job, progress: Progress,
            settings: Settings) -> dict[str, Any]:
    """Write the job's file under its key from the message's activity as committed
    when the job started. Nothing is visible under the key unless the whole file was
    written. Returns the file's manifest."""
    with engine.connect() as conn:
        message_id, channel = (str(v) for v in conn.execute(text(
            "SELECT message_id, target_channel FROM messages WHERE id = :pk"),
            {"pk": job.message_pk}).one())
        conn.rollback()
    report = report_for(job, channel)
    progress.total = known_total(engine, job.message_pk, report.events)
    with (activity.snapshot(engine) as raw,
          closing(Ahead(_chunks(raw, job, channel, report, progress),
                        name="export-reader")) as chunks,
          store.writer(job.file_key) as stored):
        out_raw = _Digest(stored)
        sink = (igzip_threaded.open(out_raw, "wb", compresslevel=COMPRESS_LEVEL,
                                    threads=COMPRESS_THREADS)
                if report.gzip else nullcontext(out_raw))
        with sink as out:
            out.write(report.header)
            for data, count in chunks:
                if progress.lost.is_set():
                    raise LeaseLost()
                out.write(data)
                progress.rows += count
                if settings.export_chunk_delay:
                    progress.lost.wait(settings.export_chunk_delay)  # a stop ends the pause
    return manifest(job, message_id, report, progress.rows, out_raw.size,
                    out_raw.hash.hexdigest())
