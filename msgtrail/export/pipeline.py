"""The export pipeline: a message's recipients, streamed as CSV into the store.

The message's recipients are read a range of ids at a time (`msgtrail.store.recipients`:
the next range read from the store, the current one pivoted by DuckDB, the one before
turned into lines by Arrow, each on its own thread), while ISA-L gzip compresses on two
others: all release the GIL, so both cores work, and memory stays within a few ranges
and DuckDB's limit whatever the audience size. A history report is the same read with
its own line and no compression.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import threading
from collections.abc import Callable, Generator, Iterator
from contextlib import closing, nullcontext
from dataclasses import dataclass, field
from typing import Any, BinaryIO

import pyarrow as pa
from isal import igzip_threaded
from sqlalchemy import Engine, select
from sqlalchemy.exc import SQLAlchemyError

from msgtrail import csv_schema
from msgtrail.db import statements as sql
from msgtrail.db.schema import messages
from msgtrail.export import activity_feed, formats, history_csv
from msgtrail.export.columns import FEED_SCHEMA, recipient_columns, recipient_schema
from msgtrail.export.jobs import Job, activity_filter
from msgtrail.files import BlobStore
from msgtrail.settings import Settings
from msgtrail.store import activity, pages, pivot, upkeep
from msgtrail.store.ahead import Ahead
from msgtrail.store.tally import Tally

log = logging.getLogger(__name__)

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
        stats, pending = conn.execute(select(messages.c.stats, messages.c.pending_since)
                                      .where(messages.c.id == message_pk)).one()
        conn.rollback()
    if pending is not None or not stats:
        return None
    return rows_from_totals(json.loads(stats)["totals"], events)


@dataclass(frozen=True)
class Report:
    """What a job writes: which recipients, each as which line, under which header."""

    format: formats.Format
    header: bytes
    line: pivot.LineBuilder | None  # text formats: each row's line
    events: list[str]  # only recipients with one of these events; empty: all
    gzip: bool
    columns: list[dict[str, str]]  # name and type of each column, for the manifest
    schema: pa.Schema | None = None  # binary formats: the typed table's


def selected_events(kind: str, params: dict) -> list[str]:
    """A job writes the recipients with one of these events (empty: all of them)."""
    if kind == "history":
        return [params["events"]]
    return list(params.get("events") or [])


def report_for(job: Job, channel: str) -> Report:
    events = selected_events(job.kind, job.params)
    raw = bool(job.params.get("csv_raw"))
    fmt = formats.get(str(job.params.get("format") or "csv"))
    if job.kind == "export":
        return Report(fmt, fmt.recipient_header(channel),
                      fmt.recipient_lines(channel, raw) if fmt.text else None, events,
                      fmt.compression == "gzip", recipient_columns(channel),
                      recipient_schema(channel))
    if job.kind == "history":
        return Report(formats.FORMATS["csv"], history_csv.HEADER,
                      lambda table: history_csv.lines(table, channel, events[0], raw),
                      events, False, history_csv.COLUMNS)
    raise ValueError(f"unknown job kind {job.kind!r}")


# What a job writes, chunk by chunk: lines, or a Parquet file's tables.
Chunk = tuple[memoryview | bytes | pa.Table, int]


def _chunks(raw: object, job: Job, channel: str, report: Report,
            progress: Progress, tally: Tally | None) -> Iterator[Chunk]:
    """An export reads the message's pages if they hold everything the snapshot sees
    or are behind by a few events; anything else pivots. CSV takes the pages' stored
    lines; the other formats build theirs. The total comes from the pages (their rows
    and the newer events' new recipients) when every recipient is written; with
    `events`, from the counters if they tell, else it is known at the end. A pivot of
    every recipient counts them into `tally` as it goes."""
    message_pk = job.message_pk
    assert message_pk is not None

    def counted(total: int) -> None:
        progress.total = total

    raw_cells = bool(job.params.get("csv_raw"))
    stored = (pages.recipient_pages(
        raw, message_pk, channel, None if report.events else counted,
        pages.line_columns(report.events, raw_cells) if report.format.stored_lines else None)
        if job.kind == "export" else None)
    if stored is not None and report.format.stored_lines:
        return pages.page_lines(stored, report.events, raw_cells)
    if stored is not None:
        return _formatted(pages.page_rows(stored, report.events), channel, report)
    if report.events:
        tally = None
    if report.line is None:
        return _formatted(pivot.rows(raw, message_pk, channel, report.events,
                                     counted, tally=tally), channel, report)
    return pivot.lines(raw, message_pk, channel, report.line, report.events, counted, tally)


def _formatted(tables: Generator[pa.Table | pa.RecordBatch, None, None], channel: str,
               report: Report) -> Iterator[Chunk]:
    """Recipients' rows in the report's format: typed tables, or lines."""
    fmt = report.format
    return _as_format(tables, lambda table: fmt.recipient_table(table, channel), report)


def _as_format(tables: Generator[pa.Table | pa.RecordBatch, None, None],
               typed: Callable[[Any], pa.Table], report: Report) -> Iterator[Chunk]:
    """Rows in the report's format: lines, or typed tables (built by `typed`)."""
    with closing(tables):
        for table in tables:
            if report.line is None:
                yield typed(table), table.num_rows
            else:
                yield csv_schema.joined(report.line(table)), table.num_rows


@dataclass
class Plan:
    """A job's file: how it is written, what its manifest says of its filter and
    cursor, and an activity export's snapshot marks."""

    report: Report
    chunks: Iterator[Chunk]
    filter: dict[str, Any]
    cursor: str | None = None
    next_cursor: str | None = None
    marks: dict[str, int] | None = None
    # Run once the whole file is written.
    after: Callable[[], None] | None = None


@dataclass
class Written:
    """What `run_job` wrote: its manifest (without times) and its marks."""

    manifest: dict[str, Any]
    marks: dict[str, int] | None


def manifest(job: Job, plan: Plan, rows: int, size: int, sha256: str) -> dict[str, Any]:
    """What the file holds (`jobs.finish` adds its times): clients check `rows` and
    `sha256` against what they downloaded."""
    report = plan.report
    return {"export_id": job.export_id, "format": report.format.name,
            "compression": "gzip" if report.gzip else "none", "columns": report.columns,
            "rows": rows, "bytes": size, "sha256": sha256, "filter": plan.filter,
            "cursor": plan.cursor, "next_cursor": plan.next_cursor}


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

    def tell(self) -> int:
        return self.size

    @property
    def closed(self) -> bool:
        return False


def message_plan(engine: Engine, raw: Any, job: Job, progress: Progress) -> Plan:
    """An export or history report of one message."""
    assert job.message_pk is not None
    with engine.connect() as conn:
        message_id, channel = (str(v) for v in conn.execute(
            select(messages.c.message_id, messages.c.target_channel)
            .where(messages.c.id == job.message_pk)).one())
        conn.rollback()
    report = report_for(job, channel)
    progress.total = known_total(engine, job.message_pk, report.events)
    # First in the snapshot: what the export reads is what these batches hold.
    [(seen,)] = activity.query(raw, sql.MESSAGE_BATCHES, pk=job.message_pk)
    tally = Tally(channel) if job.kind == "export" else None
    return Plan(report, _chunks(raw, job, channel, report, progress, tally),
                {"message_ids": [message_id], "events": report.events,
                 "since": None, "until": None},
                after=functools.partial(_store_tally, engine, job.message_pk, tally, int(seen)))


def _store_tally(engine: Engine, message_pk: int, tally: Tally | None,
                 seen: int) -> None:
    """The message's counters from the export's own pivot, if it counted every
    recipient; a failure here costs only a later recount, not the export."""
    if tally is None or not tally.complete:
        return
    try:
        upkeep.store_counts(engine, message_pk, tally.channel, tally.counts(), seen,
                            only_current=True)
    except SQLAlchemyError:
        log.warning("counters of message %s not stored from its export", message_pk,
                    exc_info=True)


def activity_plan(raw: Any, job: Job) -> Plan:
    """An app-level export: its rows are the events of the app's messages first
    recorded after the cursor's snapshot (all, without one), within the filter."""
    params = job.params
    # First in the snapshot: the marks and the events read after are of one moment.
    messages = activity_feed.messages_of(raw, job.app_pk)
    after = (activity_feed.cursor_marks(raw, job.app_pk, params["cursor"])
             if params.get("cursor") else {})
    fmt = formats.get(params["format"])
    report = Report(fmt, fmt.feed_header, fmt.feed_lines if fmt.text else None,
                    list(params.get("events") or []), params["compression"] == "gzip",
                    activity_feed.columns(), FEED_SCHEMA)
    chunks = _as_format(activity_feed.rows(raw, messages, params, after, fmt.attribute_cell),
                        fmt.feed_table, report)
    return Plan(report, chunks, activity_filter(params), params.get("cursor"),
                job.export_id, activity_feed.marks(messages))


def run_job(engine: Engine, store: BlobStore, job: Job, progress: Progress,
            settings: Settings) -> Written:
    """Write the job's file under its key from the activity as committed when the job
    started. Nothing is visible under the key unless the whole file was written.
    Returns its manifest (and an activity export's marks)."""
    with activity.snapshot(engine) as raw:
        plan = (activity_plan(raw, job) if job.kind == "activity"
                else message_plan(engine, raw, job, progress))
        report = plan.report
        with (closing(Ahead(plan.chunks, depth=4, name="export-reader")) as chunks,
              store.writer(job.file_key) as stored):
            out_raw = _Digest(stored)
            sink = (igzip_threaded.open(out_raw, "wb", compresslevel=COMPRESS_LEVEL,
                                        threads=COMPRESS_THREADS)
                    if report.gzip else nullcontext(out_raw))
            with sink as out, report.format.writer(out, report.header,
                                                    report.schema) as write:
                for data, count in chunks:
                    if progress.lost.is_set():
                        raise LeaseLost()
                    write(data)
                    progress.rows += count
                    if settings.export_chunk_delay:
                        progress.lost.wait(settings.export_chunk_delay)  # a stop ends the pause
    if plan.after is not None:
        plan.after()
    return Written(manifest(job, plan, progress.rows, out_raw.size, out_raw.hash.hexdigest()),
                   plan.marks)
