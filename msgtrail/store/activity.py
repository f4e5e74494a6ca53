"""The activity store: a message's events as columnar segments.

Each accepted batch of events becomes one segment: an Arrow IPC stream in one
row of `activity_segments`, written in the request's transaction. Nothing is ever
updated in place, so ingestion pays one sequential write per batch instead of one
B-tree insert per event, and a reader (`msgtrail.store.recipients`) pivots a message's
segments into per-recipient rows in DuckDB when it asks: there is no fold to wait
for (docs/internals/store.md).

A batch is stored as up to PARTS segments, one per first hex digit of its events'
subscription ids (the ids are random), so that a reader takes a range of ids at a time
straight from the store, without reading every segment to split it
(docs/internals/store.md). Ids are stored as their 16 bytes (`event_batch.keys`);
segments written before hold them as strings, and `decode` hands every reader bytes.

Every event carries `rec`, its place in the order msgtrail accepted the message's
events: the batch number, handed out under the message row's lock (so batches of one
message are numbered in commit order, on both databases), and its position in the
batch. Repeats of one (message, subscription, event) collapse when read: the earliest
time wins, attributes keep their first known value by `rec`.

In the background (`msgtrail.store.upkeep`), `compact` merges a message's many small
segments into one sorted segment (single-event webhooks write one segment per request),
dropping only rows that repeat an earlier row exactly.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.ipc as ipc
from sqlalchemy import Connection, Engine, delete

from msgtrail.db import dialect
from msgtrail.db import statements as sql
from msgtrail.db.schema import activity_segments, recipient_pages
from msgtrail.store.event_batch import REC_BITS, SCHEMA, keys

REC = SCHEMA.get_field_index("rec")
# Uncompressed: LZ4 saved a fifth of the bytes and cost every read the time to decode
# them (uncompressed, decoding is zero-copy), and every small (webhook) segment more to
# set up than its whole encode (docs/benchmarks.md, "Figures behind the code").
_IPC = ipc.IpcWriteOptions()

# Small segments (fewer events each than SMALL_SEGMENT) are merged at most MAX_MERGED
# and MERGE_EVENTS events at a time (memory holds them, sorted twice): a fifth of the
# events at a time holds a third of the memory, for a little more time
# (docs/benchmarks.md). `msgtrail.store.upkeep` decides when.
SMALL_SEGMENT = 1_000
MAX_MERGED = 256
MERGE_EVENTS = 32_768

# Segments per batch at most: one per first hex digit of the subscription ids.
PARTS = 16
# A smaller batch (a group of webhooks) is stored as one segment of any part (NULL):
# split, most parts would hold an event or two, and 50,000 webhooks took ~25% longer
# to store (bench/webhooks.py). Compaction splits them into parts.
PART_MIN_EVENTS = 64
_BYTES = pa.array([bytes([b]) for b in range(256)], pa.binary(1))


def _ipc_bytes(batch: pa.RecordBatch) -> bytes:
    sink = pa.BufferOutputStream()
    with ipc.new_stream(sink, SCHEMA, options=_IPC) as writer:
        writer.write_batch(batch)
    return sink.getvalue().to_pybytes()


def decode(data: bytes) -> Iterator[pa.RecordBatch]:
    """A segment's events, with the ids as bytes even if it was stored with strings
    (before 16-byte keys; compaction rewrites the small ones, and a big one costs a read
    a conversion)."""
    for batch in ipc.open_stream(pa.py_buffer(data)):
        if batch.schema.field(0).type == pa.string():
            batch = batch.set_column(0, SCHEMA.field(0), keys(batch.column(0)))
        yield batch


def first_byte(ids: pa.Array | pa.ChunkedArray) -> pa.Array:
    """The first byte of each subscription id, as an integer (0-255)."""
    return pc.index_in(pc.binary_slice(ids, 0, 1), _BYTES)


def part_of(ids: pa.Array | pa.ChunkedArray) -> pa.Array:
    """The part (`PARTS`) each subscription id is stored in: its first hex digit."""
    return pc.shift_right(first_byte(ids), 4)


def append(conn: Connection, message_pk: int, events: pa.RecordBatch, at: int) -> None:
    """Store validated events of one message (`event_batch.columns`) as its next batch,
    in the caller's write transaction: it only numbers them, groups them by part (one
    Arrow take) and stores them, so that the write lock is held briefly (two senders'
    requests build their columns meanwhile)."""
    if not events.num_rows:
        return
    # Numbering under the message row's lock: concurrent appends never share a batch,
    # and a message's batches are numbered in the order they commit.
    batch = conn.execute(sql.NEXT_BATCH, {"at": at, "pk": message_pk}).scalar_one()
    rec = pc.bit_wise_or(events.column(REC), pa.scalar(batch << REC_BITS, pa.int64()))
    events = events.set_column(REC, "rec", rec)
    groups = by_part(events) if events.num_rows >= PART_MIN_EVENTS else [(None, events)]
    rows = [{"pk": message_pk, "first": batch, "last": batch, "n": part.num_rows,
             "data": _ipc_bytes(part), "part": k} for k, part in groups]
    # One row as one execute: executemany costs more, and a single-event webhook holds
    # the write lock for little else.
    conn.execute(sql.INSERT_SEGMENT, rows[0] if len(rows) == 1 else rows)


def by_part(events: pa.RecordBatch) -> list[tuple[int | None, pa.RecordBatch]]:
    """The events grouped by the first hex digit of their subscription ids, as (digit,
    events) in digit order."""
    return list(grouped(events, part_of(events.column(0))))


def grouped(events: pa.RecordBatch, key: pa.Array) -> list[tuple[int, pa.RecordBatch]]:
    """The rows grouped by an integer key, as (key, rows) in key order: one take
    groups them, and each key's rows are then a slice."""
    events = events.take(pc.sort_indices(key))
    found = pc.value_counts(key)
    start, groups = 0, []
    for k, n in sorted(zip(found.field(0).to_pylist(), found.field(1).to_pylist(),
                           strict=True)):
        groups.append((k, events.slice(start, n)))
        start += n
    return groups


@contextmanager
def snapshot(engine: Engine) -> Iterator[Any]:
    """A DB-API connection in a read transaction that sees one snapshot throughout and
    takes no lock (SQLite: a deferred BEGIN, not the engine's BEGIN IMMEDIATE, so that
    a long read never holds ingestion up; PostgreSQL: REPEATABLE READ)."""
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        cursor.execute(sql.BEGIN_SNAPSHOT[engine.dialect.name])
        cursor.close()
        yield raw
    finally:
        try:
            raw.rollback()
        finally:
            raw.close()


def query(raw: Any, read: sql.Read, **params: Any) -> list[Any]:
    """The rows of one of the store's queries (`statements.Read`) on a snapshot's
    connection. PostgreSQL sends them in binary: the text form of a bytea is hex,
    twice the bytes, and decoding it costs more than twice the time
    (docs/benchmarks.md, "Figures behind the code")."""
    cursor = raw.cursor()
    try:
        if type(cursor).__module__.startswith("psycopg"):
            return list(cursor.execute(read.postgresql, params, binary=True).fetchall())
        return list(cursor.execute(read.sqlite, params).fetchall())
    finally:
        cursor.close()


def segments(raw: Any, message_pk: int, after_batch: int = -1) -> Iterator[bytes]:
    """The message's segments holding events of batches after `after_batch` (all by
    default: batch 0 holds recipients folded before segments existed), one at a time,
    from the snapshot's connection. A compacted segment may also hold earlier
    batches' events."""
    ids = [r[0] for r in query(raw, sql.SEGMENTS_AFTER, pk=message_pk, after=after_batch)]
    for segment_id in ids:
        for (data,) in query(raw, sql.SEGMENT_DATA, id=segment_id):
            yield bytes(data)


def compact(engine: Engine, message_pk: int, pause: Callable[[], None] = lambda: None) -> bool:
    """Merge a message's small segments of each part into one, sorted by subscription
    (then `rec`), at most MAX_MERGED segments and MERGE_EVENTS events at a time, a
    transaction each; small segments of any part (NULL) are stored by part once merged.
    False when there was nothing to merge. `pause` is called between merges (each its
    own snapshot and transaction: it holds nothing). Exact repeats of an earlier row (a retried
    request) are dropped; the earliest `rec` of each is kept, so neither the
    first-known rule nor "when first recorded" changes."""
    merged = False
    # Merging segments of no part writes segments of parts, due for merging in turn.
    while parts := _small_parts(engine, message_pk):
        progressed = False
        for part in parts:
            # Each round merges at least two segments into one, or splits a NULL one.
            while _compact_part(engine, message_pk, part):
                progressed = merged = True
                pause()
        if not progressed:
            break
    return merged


def _small_parts(engine: Engine, message_pk: int) -> list[int | None]:
    """The message's parts holding small segments to merge, NULL (no part) first."""
    with snapshot(engine) as raw:
        parts = [r[0] for r in query(raw, sql.SMALL_PARTS, pk=message_pk, small=SMALL_SEGMENT)]
    return sorted(parts, key=lambda p: -1 if p is None else p)


def _compact_part(engine: Engine, message_pk: int, part: int | None) -> bool:
    with snapshot(engine) as raw:
        found = _merged(raw, message_pk, part)
    if found is None:
        return False
    table, ids, first, last = found
    rows = (table.combine_chunks().to_batches() or [pa.RecordBatch.from_pylist([], SCHEMA)])[0]
    groups = [(part, rows)] if part is not None else by_part(rows)
    with engine.begin() as conn:
        dialect.lock_message(conn, message_pk)
        # Only the segments read are replaced; any appended since stay as they are.
        gone = conn.execute(delete(activity_segments).where(
            activity_segments.c.id.in_(ids))).rowcount
        if gone != len(ids):  # another compaction got there first
            conn.rollback()
            return False
        conn.execute(sql.INSERT_SEGMENT,
            [{"pk": message_pk, "first": first, "last": last, "n": group.num_rows,
              "data": _ipc_bytes(group), "part": k} for k, group in groups])
    return True


def _merged(raw: Any, message_pk: int,
            part: int | None) -> tuple[pa.Table, list[int], int, int] | None:
    of = {"pk": message_pk, "small": SMALL_SEGMENT,
          **({"part": part} if part is not None else {})}
    rows: list[Any] = []  # the oldest small segments, up to MERGE_EVENTS events (and two at least)
    held = 0
    listed = sql.SMALL_OF_NO_PART if part is None else sql.SMALL_OF_PART
    for row in query(raw, listed, **of, limit=MAX_MERGED):
        if len(rows) >= 2 and held + row[3] > MERGE_EVENTS:
            break
        rows.append(row)
        held += row[3]
    if len(rows) < (1 if part is None else 2):
        return None
    ids = [r[0] for r in rows]
    data = query(raw, sql.SMALL_DATA_OF_NO_PART if part is None else sql.SMALL_DATA_OF_PART,
                 **of, first=ids[0], last=ids[-1])
    assert len(data) == len(ids)
    table = _without_repeats(
        pa.Table.from_batches([b for (d,) in data for b in decode(bytes(d))], SCHEMA))
    table = table.take(pc.sort_indices(
        table, [("subscription_id", "ascending"), ("rec", "ascending")]))
    return table, ids, min(r[1] for r in rows), max(r[2] for r in rows)


def _without_repeats(table: pa.Table) -> pa.Table:
    """The events, each exact repeat of another (every column but `rec` equal) dropped,
    the earliest `rec` kept. Sorted by every column, repeats are neighbours: a hash
    group-by over the string columns did the same in more than twice the time and
    memory (docs/benchmarks.md, "Figures behind the code")."""
    fields = [c for c in SCHEMA.names if c != "rec"]
    table = table.take(pc.sort_indices(table, [(f, "ascending") for f in (*fields, "rec")]))
    n = table.num_rows
    if n < 2:
        return table
    repeat = None
    for f in fields:
        column = table.column(f)
        this, before = column.slice(1), column.slice(0, n - 1)
        same = pc.fill_null(pc.equal(this, before), False)
        if column.null_count:
            same = pc.or_(same, pc.and_(pc.is_null(this), pc.is_null(before)))
        repeat = same if repeat is None else pc.and_(repeat, same)
    assert repeat is not None
    return table.filter(pa.concat_arrays([pa.array([True]),
                                          pc.invert(repeat).combine_chunks()]))


def purge(conn: Connection, message_pk: int) -> None:
    for table in (activity_segments, recipient_pages):
        conn.execute(delete(table).where(table.c.message_pk == message_pk))

