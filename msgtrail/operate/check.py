"""`msgtrail check`: read everything the store keeps and say what is wrong with it.

- every activity segment of every message kept decodes, holds the events its row
  says, and lies within the message's batches;
- every page of a message's current pages decodes and holds the rows its row says;
- every job is in a known state with what that state needs, and every ready job's
  file exists with the bytes and SHA-256 its manifest gives.

It reads one snapshot of the database (no lock: ingestion goes on), and on either
backend; files come from the configured store (a directory or S3).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
import pyarrow.ipc as ipc
from sqlalchemy import Engine

from msgtrail.db import statements as sql
from msgtrail.files.base import BlobStore
from msgtrail.store import activity

STATES = ("queued", "running", "ready", "failed", "expired")
_CHUNK = 1 << 20


@dataclass
class Report:
    """What was read, and every problem found (one readable line each)."""

    messages: int = 0
    segments: int = 0
    events: int = 0
    pages: int = 0
    jobs: int = 0
    files: int = 0
    file_bytes: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def check(engine: Engine, store: BlobStore,
          progress: Callable[[str], None] = lambda _: None) -> Report:
    report = Report()
    with activity.snapshot(engine) as raw:
        messages = activity.query(raw, sql.CHECK_MESSAGES)
        for pk, message_id, next_batch, generation in messages:
            _check_message(raw, report, pk, message_id, next_batch, generation)
            report.messages += 1
            if report.messages % 100 == 0:
                progress(f"{report.messages}/{len(messages)} messages")
        for row in activity.query(raw, sql.CHECK_JOBS):
            _check_job(store, report, *row)
            report.jobs += 1
    return report


def _check_message(raw: Any, report: Report, pk: int, message_id: str, next_batch: int,
                   generation: int | None) -> None:
    where = f"message {message_id}"
    for segment_id, first, last, events in activity.query(raw, sql.CHECK_SEGMENTS, pk=pk):
        report.segments += 1
        if not 0 <= first <= last <= next_batch:  # batches are numbered 1 to next_batch
            report.problems.append(f"{where}: segment {segment_id} holds batches {first}-{last},"
                                   f" past the message's last, {next_batch}")
        try:
            [(data,)] = activity.query(raw, sql.SEGMENT_DATA, id=segment_id)
            rows = sum(batch.num_rows for batch in activity.decode(bytes(data)))
        except (pa.ArrowException, ValueError) as exc:
            report.problems.append(f"{where}: segment {segment_id} cannot be read: {exc}")
            continue
        report.events += rows
        if rows != events:
            report.problems.append(f"{where}: segment {segment_id} holds {rows} events, its "
                                   f"row says {events}")
    if generation is None:
        return
    for page, rows in activity.query(raw, sql.CHECK_PAGES, pk=pk, g=generation):
        report.pages += 1
        try:
            [(data,)] = activity.query(raw, sql.PAGE_DATA, pk=pk, g=generation, page=page)
            found = ipc.open_stream(pa.py_buffer(data)).read_all().num_rows
        except (pa.ArrowException, ValueError) as exc:
            report.problems.append(f"{where}: page {page} cannot be read: {exc}")
            continue
        if found != rows:
            report.problems.append(f"{where}: page {page} holds {found} rows, its row says "
                                   f"{rows}")


def _check_job(store: BlobStore, report: Report, export_id: str, state: str, key: str,
               size: int | None, manifest: str | None, lease_owner: str | None,
               error: str | None) -> None:
    where = f"export {export_id}"
    if state not in STATES:
        report.problems.append(f"{where}: unknown state {state!r}")
    elif state == "running" and not lease_owner:
        report.problems.append(f"{where}: running without a lease")
    elif state == "failed" and not error:
        report.problems.append(f"{where}: failed without an error")
    elif state == "ready":
        _check_file(store, report, where, key, size, manifest)


def _check_file(store: BlobStore, report: Report, where: str, key: str, size: int | None,
                manifest: str | None) -> None:
    try:
        expected = json.loads(manifest or "")
    except ValueError:
        report.problems.append(f"{where}: ready without a manifest")
        return
    reader = store.reader(key)
    if reader is None:
        report.problems.append(f"{where}: ready, but its file {key} is missing")
        return
    digest, found = hashlib.sha256(), 0
    with reader:
        while chunk := reader.read(_CHUNK):
            digest.update(chunk)
            found += len(chunk)
    report.files += 1
    report.file_bytes += found
    if found != expected.get("bytes") or found != size:
        report.problems.append(f"{where}: file {key} has {found} bytes, its manifest says "
                               f"{expected.get('bytes')}")
    elif digest.hexdigest() != expected.get("sha256"):
        report.problems.append(f"{where}: file {key} does not match its manifest's SHA-256")
