"""A message's events pivoted to one row per subscription, in DuckDB, a range of ids at a
time: every reader that cannot use the message's pages (`msgtrail.store.pages`) reads
here, and the answer reflects every event committed before it asked. The store keeps
events as they came (`msgtrail.store.activity`); DuckDB groups them by subscription,
spilling to disk beyond `MEMORY_LIMIT`, while Arrow builds the lines of the range
before. One pivot, one place:

- each event's time is the earliest of its repeats;
- each attribute is its first known value, in the order msgtrail accepted the events
  (`rec`), whichever event carried it.
"""

from __future__ import annotations

import functools
import os
import tempfile
from collections.abc import Callable, Generator, Iterator
from contextlib import closing, contextmanager
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.ipc as ipc

from msgtrail import csv_schema
from msgtrail.channels import CHANNEL_EVENTS, EVENT_CODE
from msgtrail.db import statements as sql
from msgtrail.store import activity, duck_sql
from msgtrail.store.ahead import Ahead
from msgtrail.store.duck_sql import ATTRIBUTES
from msgtrail.store.event_batch import SCHEMA
from msgtrail.store.tally import Tally

# DuckDB's share of the process: a 1,000,000-recipient pivot spills past it instead of
# growing the process (docs/benchmarks.md).
MEMORY_LIMIT = "128MB"


# One thread: the reader's other core builds lines and compresses them. A second
# DuckDB thread cost memory and saved nothing measurable end to end.
THREADS = 1


CHUNK_ROWS = 50_000


@contextmanager
def connect() -> Iterator[duckdb.DuckDBPyConnection]:
    """An in-memory DuckDB for one read, spilling into a directory of its own (readers
    in other threads and processes spill at the same time), removed afterwards."""
    os.makedirs(_spill_dir(), exist_ok=True)
    with tempfile.TemporaryDirectory(dir=_spill_dir()) as spill:
        con = duckdb.connect(config={"threads": THREADS, "memory_limit": MEMORY_LIMIT,
                                     "temp_directory": spill,
                                     "preserve_insertion_order": False})
        try:
            yield con
        finally:
            con.close()


def pivot(con: duckdb.DuckDBPyConnection, events: pa.Table, channel: str,
          where: str = "true", ordered: bool = True, recs: bool = False,
          attributes: tuple[str, ...] = ATTRIBUTES) -> pa.Table:
    """Per-recipient rows of the events (of a range): subscription_id, the attributes,
    and one column per event of the channel holding its earliest time; with `recs`,
    also `rec_<event>`, when msgtrail first recorded it (its smallest `rec`). Only the
    rows `where` says, by subscription id if `ordered`; only the `attributes` asked for
    (the counters need only the device type).

    DuckDB finds, for each attribute, which event first carried it (its place `i` in
    the order of `rec`), and Arrow takes the values: aggregating the strings themselves
    cost DuckDB more time and held them all in its hash table."""
    order, places = _rec_order(events)
    # The ids' bytes seen as Arrow's UUID type: DuckDB groups them as 128-bit integers
    # and gives them back as canonical strings, in the same order.
    ids = pa.chunked_array([pa.ExtensionArray.from_storage(pa.uuid(), chunk)
                            for chunk in events.column(0).chunks], pa.uuid())
    con.register("events", events.set_column(0, pa.field("subscription_id", pa.uuid()), ids)
                 .append_column("i", places))
    # What no event of the range holds is null without aggregating it: right after a
    # send, a range holds sends and deliveries, and the other events' aggregates would
    # cost DuckDB time for nothing (the failure message's too, elsewhere).
    codes = set(pc.unique(events.column("event")).to_pylist())
    held = ({e for e in CHANNEL_EVENTS[channel] if EVENT_CODE[e] in codes}
            | {a for a in attributes if events.column(a).null_count < events.num_rows})
    try:
        table = con.sql(f"SELECT * FROM ({duck_sql.pivot(channel, recs, attributes, held)})"
                        f" WHERE {where}"
                        + (" ORDER BY subscription_id" if ordered else "")).to_arrow_table()
    finally:
        con.unregister("events")
    for a in attributes:
        at = table.column(a) if order is None else order.take(table.column(a))
        table = table.set_column(table.schema.get_field_index(a), a, events.column(a).take(at))
    return table


def _rec_order(events: pa.Table) -> tuple[pa.Array | None, pa.Array]:
    """Each event's place in `rec` order, for its subscription, and the events'
    positions in that order (None when their positions are such places already).

    A subscription lives in one part. If the range holds each part in one run (parts
    never go back) and `rec` falls only where one part ends and the next begins, the
    positions are in `rec` order for every subscription, and nothing is sorted: a
    range read from the store's parts is, unless compaction stored merged segments
    after others (nor are split files, which mix parts). With places in `rec` order,
    "the first event that carried it" is the smallest place: DuckDB's `min` is
    cheaper than `arg_min(i, rec)`."""
    rec = events.column("rec").combine_chunks()
    n = len(rec)
    falls = pc.indices_nonzero(pc.less_equal(rec.slice(1), rec.slice(0, max(n - 1, 0))))
    parts = activity.part_of(events.column(0).combine_chunks()) if len(falls) else None
    if parts is None or (
            pc.all(pc.greater_equal(parts.slice(1), parts.slice(0, n - 1))).as_py()
            and pc.all(pc.not_equal(parts.take(falls),
                                    parts.take(pc.add(falls, 1)))).as_py()):
        return None, pc.cumulative_sum(pa.repeat(pa.scalar(1, pa.int32()), n), start=-1)
    return pc.sort_indices(rec), pc.subtract(pc.rank(rec, tiebreaker="first"), 1).cast(pa.int32())


# Builds each recipient's line from a table of recipients (the pivot's columns).
LineBuilder = Callable[[pa.RecordBatch], pa.Array]


def export_line(channel: str, raw: bool) -> LineBuilder:
    """A recipient's audience-activity CSV line; unless `raw`, formula cells are
    neutralised."""
    return lambda table: csv_schema.lines(table, channel, safe=not raw)


# Events per pass: the message's events are read a subscription-id range at a time, in
# ranges of about this many, each pivoted on its own, so that DuckDB holds one range:
# the same time as one pass, in about half the memory (docs/internals/store.md).
PASS_EVENTS = 150_000


# Ranges are cut on the ids' first byte: at most 256 passes.
_PREFIXES = 256


# A pass's events, read when the pass begins.
Source = Callable[[], pa.Table]


@contextmanager
def split(raw: Any, message_pk: int) -> Iterator[list[Source]]:
    """The message's events as subscription-id ranges in key order, each near
    PASS_EVENTS: straight from the store's parts (`activity.PARTS`, a power of two of
    them to a range) when every segment has one and the ranges need be no finer;
    else its segments are read once and split into temporary Arrow files by the ids'
    first byte."""
    [(total, mixed)] = activity.query(raw, sql.EVENTS_AND_UNPARTED, pk=message_pk)
    ranges = 1
    while ranges < _PREFIXES and int(total) > ranges * PASS_EVENTS:
        ranges *= 2
    if not mixed and ranges <= activity.PARTS:
        width = activity.PARTS // ranges
        yield [functools.partial(_part_events, raw, message_pk, k * width, (k + 1) * width - 1)
               for k in range(ranges)]
        return
    if not mixed:
        with _split_parts(raw, message_pk, ranges // activity.PARTS) as sources:
            yield sources
        return
    with _split_files(raw, message_pk, ranges) as paths:
        yield [functools.partial(_events, path) for path in paths]


def _part_events(raw: Any, message_pk: int, first: int, last: int) -> pa.Table:
    """The events of the message's parts first..last, as the snapshot sees them."""
    rows = activity.query(raw, sql.PARTS_DATA, pk=message_pk, first=first, last=last)
    # One chunk: DuckDB's scan pays per chunk, and single-event webhooks write a
    # segment each (as one chunk, counting them takes half the time).
    return pa.Table.from_batches([b for (data,) in rows for b in activity.decode(bytes(data))],
                                 SCHEMA).combine_chunks()


@contextmanager
def _split_files(raw: Any, message_pk: int, ranges: int) -> Iterator[list[str]]:
    """The message's segments read once and split into `ranges` temporary Arrow files
    by their ids' first byte."""
    os.makedirs(_spill_dir(), exist_ok=True)
    with tempfile.TemporaryDirectory(dir=_spill_dir()) as tmp:
        paths = [os.path.join(tmp, str(k)) for k in range(ranges)]
        sinks = [ipc.new_stream(pa.OSFile(p, "wb"), SCHEMA) for p in paths]
        try:
            for data in activity.segments(raw, message_pk):
                for batch in activity.decode(data):
                    if ranges == 1:
                        sinks[0].write_batch(batch)
                        continue
                    part = pc.divide(activity.first_byte(batch.column(0)), _PREFIXES // ranges)
                    for k, rows in activity.grouped(batch, part):
                        sinks[k].write_batch(rows)
        finally:
            for sink in sinks:
                sink.close()
        yield paths


@contextmanager
def _split_parts(raw: Any, message_pk: int, per_part: int) -> Iterator[list[Source]]:
    """Ranges finer than the parts: each part's events split into `per_part`
    temporary Arrow files by the rest of their ids' first byte, a part at a time, when
    its first range is read (on the reader's thread, while the part before is
    pivoted). Splitting the whole message before the first pivot left every core but
    one idle meanwhile: a 3,000,000-recipient export ran at half the rate of a
    1,000,000 one (docs/benchmarks.md)."""
    os.makedirs(_spill_dir(), exist_ok=True)
    with tempfile.TemporaryDirectory(dir=_spill_dir()) as tmp:
        yield [functools.partial(_part_range, raw, message_pk, part, k, per_part, tmp)
               for part in range(activity.PARTS) for k in range(per_part)]


def _part_range(raw: Any, message_pk: int, part: int, k: int, per_part: int,
                tmp: str) -> pa.Table:
    """The events of the part's k-th range (of `per_part`); the first splits the part."""
    if k == 0:
        _split_part(raw, message_pk, part, per_part, tmp)
    path = os.path.join(tmp, f"{part}-{k}")
    with pa.OSFile(path) as file:  # read, not mapped: the range is let go after
        table = ipc.open_stream(file).read_all().combine_chunks()
    os.remove(path)
    return table


def _split_part(raw: Any, message_pk: int, part: int, per_part: int, tmp: str) -> None:
    """The part's segments, read SPLIT_EVENTS events at a time, written into
    `per_part` files by the low bits of their ids' first byte (in key order)."""
    width = _PREFIXES // activity.PARTS // per_part
    sinks = [ipc.new_stream(pa.OSFile(os.path.join(tmp, f"{part}-{k}"), "wb"), SCHEMA)
             for k in range(per_part)]
    try:
        for first, last in _id_runs(activity.query(raw, sql.PART_SEGMENTS, pk=message_pk,
                                                   part=part)):
            # Split as one batch: per segment (~600 events each in a batch of
            # 10,000), the calls cost more than the work.
            events = pa.Table.from_batches([
                b for (data,) in activity.query(raw, sql.PART_DATA_BETWEEN, pk=message_pk,
                                                part=part, first=first, last=last)
                for b in activity.decode(bytes(data))], SCHEMA).combine_chunks()
            for batch in events.to_batches():
                low = pc.bit_wise_and(activity.first_byte(batch.column(0)), 0x0F)
                for k, rows in activity.grouped(batch, pc.divide(low, width)):
                    sinks[k].write_batch(rows)
    finally:
        for sink in sinks:
            sink.close()


# Events split at a time (`_split_part`): as one batch, not per segment, yet not a
# whole range, which it would hold twice (read, and taken by range).
SPLIT_EVENTS = 32_768


def _id_runs(segments: list[Any]) -> Iterator[tuple[int, int]]:
    """(first id, last id) of consecutive (id, events) segments holding about
    SPLIT_EVENTS events together (or one segment, whatever its size)."""
    start, held = None, 0
    for segment_id, events in segments:
        if start is None:
            start = segment_id
        held += int(events)
        if held >= SPLIT_EVENTS:
            yield start, segment_id
            start, held = None, 0
    if start is not None:
        yield start, segments[-1][0]


def _events(path: str) -> pa.Table:
    """One split file's events, memory-mapped: nothing is copied until DuckDB reads it."""
    return ipc.open_stream(pa.memory_map(path)).read_all()


def passes(raw: Any, message_pk: int) -> Iterator[tuple[duckdb.DuckDBPyConnection, pa.Table]]:
    """Each subscription-id range's events in turn, in key order (see split), with
    one DuckDB connection for all of them (setting one up and its spill directory for
    each range is measurable)."""
    with split(raw, message_pk) as sources:
        yield from _each(sources)


def _each(sources: list[Source]) -> Iterator[tuple[duckdb.DuckDBPyConnection, pa.Table]]:
    """One connection and each range's events in turn; the next range is read from
    the store on a thread of its own meanwhile."""
    # Depth 1: one range read while the one before is pivoted. Two (a range waiting
    # besides) held more memory at the same speed.
    tables = Ahead((source() for source in sources), depth=1, name="range-reader")
    with connect() as con, closing(tables):
        for table in tables:
            yield con, table


def _spill_dir() -> str:
    return os.path.join(tempfile.gettempdir(), "msgtrail-duckdb")


def lines(raw: Any, message_pk: int, channel: str, line: LineBuilder, events: list[str],
          on_total: Callable[[int], None] | None = None, tally: Tally | None = None
          ) -> Iterator[tuple[memoryview, int]]:
    """(lines, count) chunks of the message's recipients (those with one of `events`,
    or all), ordered by subscription id, each line built by `line`. Each range is
    pivoted on a thread of its own while the lines of the range before are built.
    on_total hears how many rows the read gives: once a range is pivoted, the rows so
    far scaled to every range (ids are random, ranges near equal), exact at the last.
    A `tally` counts the recipients as they go by (see Tally)."""
    with closing(rows(raw, message_pk, channel, events, on_total, tally=tally)) as batches:
        for batch in batches:
            yield csv_schema.joined(line(batch)), batch.num_rows


def rows(raw: Any, message_pk: int, channel: str, events: list[str],
         on_total: Callable[[int], None] | None = None, recs: bool = False,
         tally: Tally | None = None) -> Generator[pa.RecordBatch, None, None]:
    """The pivot's rows of `lines`, in chunks of CHUNK_ROWS at most, in key order
    (with `recs`, each event's first `rec` too: see duck_sql.pivot)."""
    if tally is not None and events:
        raise ValueError("a tally counts every recipient: no events filter")
    pivoted = functools.partial(pivot, channel=channel, where=duck_sql.any_of(events), recs=recs)
    # Depth 2: a pivot waiting besides the one being made. Depth 1 holds less, but
    # the pivot is the slowest stage and the export then waits on it.
    with split(raw, message_pk) as sources, \
            closing(Ahead(_pivoted(sources, pivoted), depth=2, name="pivot")) as ranges:
        rows = 0
        for done, table in enumerate(ranges, 1):
            # Counted here, not on the pivot's thread: the pivot is the read's
            # slowest stage, and this one waits on it.
            if tally is not None:
                tally.add(table)
            rows += table.num_rows
            if on_total is not None:
                on_total(rows * len(sources) // done)
            for batch in table.to_batches(CHUNK_ROWS):
                if batch.num_rows:
                    yield batch
        if tally is not None:
            tally.complete = True


def _pivoted(sources: list[Source], pivoted: Callable[..., pa.Table]) -> Iterator[pa.Table]:
    """Each range pivoted, in turn."""
    for con, table in _each(sources):
        yield pivoted(con, table)
