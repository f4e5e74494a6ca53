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
from collections.abc import Callable, Generator, Iterator
from contextlib import closing, contextmanager, nullcontext
from dataclasses import dataclass, field
from typing import Any, BinaryIO

import pyarrow as pa
from isal import igzip_threaded
from sqlalchemy import Engine, text

from msgtrail import activity, csv_schema, file_formats, history_csv, recipients
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
    format: str = "csv"  # file_formats.FORMATS; parquet is written from tables, not lines


def selected_events(kind: str, params: dict) -> list[str]:
    """A job writes the recipients with one of these events (empty: all of them)."""
    if kind == "history":
        return [params["events"]]
    return list(params.get("events") or [])


def report_for(job: Job, channel: str) -> Report:
    events = selected_events(job.kind, job.params)
    raw = bool(job.params.get("csv_raw"))
    fmt = str(job.params.get("format") or "csv")
    gzip = file_formats.SUFFIX[fmt].endswith(".gz")
    if job.kind == "export" and fmt == "jsonl":
        return Report(b"", lambda table: file_formats.json_lines(table, channel), events,
                      gzip, file_formats.columns(channel), fmt)
    if job.kind == "export":
        return Report(csv_schema.header(channel) if fmt == "csv" else b"",
                      recipients.export_line(channel, raw), events, gzip,
                      file_formats.columns(channel), fmt)
    if job.kind == "history":
        return Report(history_csv.HEADER,
                      lambda table: history_csv.lines(table, channel, events[0], raw),
                      events, False, history_csv.COLUMNS)
    raise ValueError(f"unknown job kind {job.kind!r}")


# What a job writes, chunk by chunk: lines, or a Parquet file's tables.
Chunk = tuple[bytes | pa.Table, int]


def _chunks(raw: object, job: Job, channel: str, report: Report,
            progress: Progress) -> Iterator[Chunk]:
    """An export reads the message's pages if they hold everything the snapshot sees
    or are behind by a few events; anything else pivots. CSV takes the pages' stored
    lines; the other formats build theirs. The total comes from the pages (their rows
    and the newer events' new recipients) when every recipient is written; with
    `events`, from the counters if they tell, else it is known at the end."""
    def counted(total: int) -> None:
        progress.total = total

    pages = (recipients.recipient_pages(raw, job.message_pk, channel,
                                        None if report.events else counted)
             if job.kind == "export" else None)
    if pages is not None and report.format == "csv":
        return recipients.page_lines(pages, report.events, bool(job.params.get("csv_raw")))
    if pages is not None:
        return _formatted(recipients.page_rows(pages, report.events), channel, report)
    if report.format == "parquet":
        return _formatted(recipients.rows(raw, job.message_pk, channel, report.events,
                                          counted), channel, report)
    return recipients.lines(raw, job.message_pk, channel, report.line, report.events, counted)


def _formatted(tables: Generator[pa.Table | pa.RecordBatch, None, None], channel: str,
               report: Report) -> Iterator[Chunk]:
    """Recipients' rows as the report's format: Parquet tables, or lines."""
    with closing(tables):
        for table in tables:
            if report.format == "parquet":
                yield file_formats.parquet_table(table, channel), table.num_rows
            else:
                yield recipients.joined(report.line(table)), table.num_rows


def manifest(job: Job, message_id: str, report: Report, rows: int, size: int,
             sha256: str) -> dict[str, Any]:
    """What the file holds (`jobs.finish` adds its times): clients check `rows` and
    `sha256` against what they downloaded."""
    return {"export_id": job.export_id, "format": report.format,
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

    def tell(self) -> int:
        return self.size

    @property
    def closed(self) -> bool:
        return False


@contextmanager
def _writer(report: Report, out: Any, channel: str) -> Iterator[Callable[[Any], Any]]:
    """What writes each chunk to `out`: its bytes after the header, or a Parquet
    writer's tables (its footer written at the end, rows or none)."""
    if report.format != "parquet":
        out.write(report.header)
        yield out.write
        return
    # Imported here: it adds ~4 MB to every serve and worker process (measured), and
    # most never write Parquet.
    import pyarrow.parquet as pq

    with pq.ParquetWriter(pa.PythonFile(out, mode="w"),
                          file_formats.parquet_schema(channel)) as parquet:
        yield parquet.write_table


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
        with sink as out, _writer(report, out, channel) as write:
            for data, count in chunks:
                if progress.lost.is_set():
                    raise LeaseLost()
                write(data)
                progress.rows += count
                if settings.export_chunk_delay:
                    progress.lost.wait(settings.export_chunk_delay)  # a stop ends the pause
    return manifest(job, message_id, report, progress.rows, out_raw.size,
                    out_raw.hash.hexdigest())
