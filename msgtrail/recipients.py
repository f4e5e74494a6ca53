"""A message's recipients: its events pivoted to one row per subscription, in DuckDB,
and kept as sorted pages of finished CSV lines once its events go quiet.

Every reader (exports, history reports, counters, the dashboard) asks here, and the
answer reflects every event committed before it asked: the store keeps events as they
came (`msgtrail.activity`), and DuckDB groups them by subscription a range of ids at a
time, spilling to disk beyond `MEMORY_LIMIT`, while Arrow builds the lines of the range
before. One pivot, one place:

- each event's time is the earliest of its repeats;
- each attribute is its first known value, in the order msgtrail accepted the events
  (`rec`), whichever event carried it.

The pivot and its lines cost ~1.5 s per 1,000,000 recipients. So once a message's events pause, the
worker stores its pivot as pages (`recipient_pages`, Arrow IPC, each recipient's CSV
line built), and a read of a message that has had no event since reads the pages
instead, at the speed of reading and compressing lines (README, benchmarks). Pages a
few events behind are merged with the newer events as they are read, and the next
build merges them the same way; with more newer events than MERGE_EVENTS, a read
pivots everything. The pages are derived data: deleting them loses nothing.
"""

from __future__ import annotations

import functools
import os
import secrets
import tempfile
from collections.abc import Callable, Generator, Iterable, Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.ipc as ipc
from sqlalchemy import Engine, text

from msgtrail import activity, csv_schema
from msgtrail.ahead import Ahead
from msgtrail.channels import CHANNEL_EVENTS, EVENT_CODE, EVENTS, FAILURE_EVENTS
from msgtrail.event_batch import REC_BITS, SCHEMA

ATTRIBUTES = ("onesignal_id", "external_id", "device_type", "failure_message")
# DuckDB's share of the process: a 1,000,000-recipient pivot spills past it instead of
# growing the process (README, benchmarks).
MEMORY_LIMIT = "128MB"
# One thread: the reader's other core builds lines and compresses them. A second
# DuckDB thread cost ~30 MB more and saved nothing measurable end to end.
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
    cost DuckDB ~0.2 s more per 1,000,000 recipients and held them all in its hash
    table."""
    order, places = _rec_order(events)
    # The ids' bytes seen as Arrow's UUID type: DuckDB groups them as 128-bit integers
    # and gives them back as canonical strings, in the same order.
    ids = pa.chunked_array([pa.ExtensionArray.from_storage(pa.uuid(), chunk)
                            for chunk in events.column(0).chunks], pa.uuid())
    con.register("events", events.set_column(0, pa.field("subscription_id", pa.uuid()), ids)
                 .append_column("i", places))
    # What no event of the range holds is null without aggregating it: right after a
    # send, a range holds sends and deliveries, and the other events' aggregates cost
    # DuckDB ~0.08 s per 1,000,000 recipients (the failure message's too, elsewhere).
    codes = set(pc.unique(events.column("event")).to_pylist())
    held = ({e for e in CHANNEL_EVENTS[channel] if EVENT_CODE[e] in codes}
            | {a for a in attributes if events.column(a).null_count < events.num_rows})
    try:
        table = con.sql(f"SELECT * FROM ({pivot_sql(channel, recs, attributes, held)})"
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
    "the first event that carried it" is the smallest place: DuckDB's `min` took
    0.04-0.06 s less than `arg_min(i, rec)` per 1,000,000 recipients."""
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


def pivot_sql(channel: str, recs: bool, attributes: tuple[str, ...],
              held: set[str]) -> str:
    """The pivot's query over `events` (and `i`, each event's place in `rec` order):
    the attributes as the place of the event that first carried each (see pivot). An
    event or attribute not `held` by any event is null."""

    def first(value: str, name: str, of: str, where: str, kind: str) -> str:
        return (f"min({value}) FILTER (WHERE {where}) AS {name}" if of in held
                else f"NULL::{kind} AS {name}")

    columns = [first("i", a, a, f"{a} IS NOT NULL", "INTEGER") for a in attributes]
    columns += [first("ts", e, e, f"event = {EVENT_CODE[e]}", "BIGINT")
                for e in CHANNEL_EVENTS[channel]]
    if recs:
        columns += [first("rec", f"rec_{e}", e, f"event = {EVENT_CODE[e]}", "BIGINT")
                    for e in CHANNEL_EVENTS[channel]]
    return (f"SELECT subscription_id, {', '.join(columns)} FROM events"
            " GROUP BY subscription_id")


def where_any(events: list[str]) -> str:
    """Only recipients with at least one of these events (names already validated)."""
    return " OR ".join(f"{e} IS NOT NULL" for e in events) if events else "true"


# Builds each recipient's line from a table of recipients (the pivot's columns).
LineBuilder = Callable[[pa.RecordBatch], pa.Array]


def export_line(channel: str, raw: bool) -> LineBuilder:
    """A recipient's audience-activity CSV line; unless `raw`, formula cells are
    neutralised."""
    return lambda table: csv_schema.lines(table, channel, safe=not raw)


# Events per pass: the message's events are read a subscription-id range at a time, in
# ranges of about this many, each pivoted on its own, so that DuckDB holds one range
# (README, "How activity is stored": one pass over 2,000,000 events took the process
# 300-425 MB above its base; sixteen, ~190 MB, in the same time).
PASS_EVENTS = 200_000
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
    [(total, mixed)] = activity.query(
        raw, "SELECT coalesce(sum(events), 0),"
        " coalesce(sum(CASE WHEN part IS NULL THEN 1 ELSE 0 END), 0)"
        " FROM activity_segments WHERE message_pk = ?", (message_pk,))
    ranges = 1
    while ranges < _PREFIXES and int(total) > ranges * PASS_EVENTS:
        ranges *= 2
    if not mixed and ranges <= activity.PARTS:
        width = activity.PARTS // ranges
        yield [functools.partial(_part_events, raw, message_pk, k * width, (k + 1) * width - 1)
               for k in range(ranges)]
        return
    with _split_files(raw, message_pk, ranges) as paths:
        yield [functools.partial(_events, path) for path in paths]


def _part_events(raw: Any, message_pk: int, first: int, last: int) -> pa.Table:
    """The events of the message's parts first..last, as the snapshot sees them."""
    rows = activity.query(
        raw, "SELECT data FROM activity_segments WHERE message_pk = ?"
        # In the index's order: sorting by id alone put every blob through a
        # temporary B-tree (0.36 s against 0.09 s per 2,000,000 events on SQLite).
        " AND part BETWEEN ? AND ? ORDER BY part, id", (message_pk, first, last))
    # One chunk: DuckDB's scan pays per chunk, and single-event webhooks write a
    # segment each (20,000 of them: counters 1.19 s as chunks, 0.56 s as one).
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


def _events(path: str) -> pa.Table:
    """One split file's events, memory-mapped: nothing is copied until DuckDB reads it."""
    return ipc.open_stream(pa.memory_map(path)).read_all()


def passes(raw: Any, message_pk: int) -> Iterator[tuple[duckdb.DuckDBPyConnection, pa.Table]]:
    """Each subscription-id range's events in turn, in key order (see split), with
    one DuckDB connection for all of them (setting one up and its spill directory cost
    ~0.4 s per 1,000,000 recipients over 16 ranges)."""
    with split(raw, message_pk) as sources:
        yield from _each(sources)


def _each(sources: list[Source]) -> Iterator[tuple[duckdb.DuckDBPyConnection, pa.Table]]:
    """One connection and each range's events in turn; the next range is read from
    the store on a thread of its own meanwhile."""
    # Depth 1: one range read while the one before is pivoted. Two (a range waiting
    # besides) held 15-18 MB more at the same speed (an export of 1,000,000
    # recipients in process, 0.86-0.89 s, 3 runs each).
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
    (with `recs`, each event's first `rec` too: see pivot_sql)."""
    if tally is not None and events:
        raise ValueError("a tally counts every recipient: no events filter")
    pivoted = functools.partial(pivot, channel=channel, where=where_any(events), recs=recs)
    # Depth 2: a pivot waiting besides the one being made. With 1, 11 MB less, but the
    # pivot is the slowest stage and waited: 0.92-0.95 s against 0.85-0.94 s.
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


@dataclass
class Tally:
    """The counters (as `counts` gives them) of the recipients a read pivots, counted
    on each range as it goes by (a few ms per range): an export of every recipient
    leaves the message's counters current, so that nobody pivots the same snapshot
    again to count them (the next read of the message, or the worker's upkeep)."""

    channel: str
    # Every range's counts, once the read went through all of them.
    complete: bool = False
    _parts: list[list[tuple[Any, ...]]] = field(default_factory=list)

    def add(self, table: pa.Table) -> None:
        self._parts.append(_counted(table, self.channel))

    def counts(self) -> list[tuple[Any, ...]]:
        return _summed(self._parts)


def _recipients(raw: Any, message_pk: int, channel: str,
                attributes: tuple[str, ...] = ATTRIBUTES
                ) -> Generator[tuple[duckdb.DuckDBPyConnection, pa.Table], None, None]:
    """Each part of the message's recipients in turn, in key order (at least the
    pivot's times and those `attributes`), with one DuckDB connection that sees it as
    `r`: its pages when they hold every event or are a few behind (`recipient_pages`),
    else the pivot's passes."""
    pages = recipient_pages(raw, message_pk, channel)
    if pages is None:
        for con, events in passes(raw, message_pk):
            table = pivot(con, events, channel, ordered=False, attributes=attributes)
            con.register("r", table)
            try:
                yield con, table
            finally:
                con.unregister("r")
        return
    with connect() as con, closing(pages):
        for page in pages:
            con.register("r", page)
            try:
                yield con, page
            finally:
                con.unregister("r")


def counts(raw: Any, message_pk: int, channel: str) -> list[tuple[Any, ...]]:
    """(device_type, recipients, failed, count per event of EVENTS) per device type."""
    return _summed(_counted(table, channel)
                   for _, table in _recipients(raw, message_pk, channel, ("device_type",)))


def _counted(table: pa.Table, channel: str) -> list[tuple[Any, ...]]:
    """The counters (as `counts` gives them) of these recipients, per device type, by
    Arrow's group-by: 1 ms per 62,500 recipients, where the same query in DuckDB took
    3.5 ms."""
    known = CHANNEL_EVENTS[channel]
    columns = {"device_type": table.column("device_type"),
               # (not named `failed`: that is an event's column)
               "failures": _failure(table, known),
               **{e: table.column(e) for e in known}}
    found = pa.table(columns).group_by("device_type", use_threads=False).aggregate(
        [([], "count_all"), ("failures", "count"), *((e, "count") for e in known)])
    return [(r["device_type"], r["count_all"], r["failures_count"],
             *(r[f"{e}_count"] if e in known else 0 for e in EVENTS))
            for r in found.to_pylist()]


def _failure(table: pa.Table, known: tuple[str, ...]) -> pa.ChunkedArray:
    """When each recipient failed (null: it did not): its first failure event's time.
    A `failed` that a delivery followed was a temporary refusal that a retry got past
    (SendGrid's blocked bounce, say): it is not a failure."""
    failed = table.column("failed")
    delivered_after = pc.fill_null(pc.greater_equal(table.column("delivered"), failed), False)
    failed = pc.if_else(delivered_after, pa.scalar(None, failed.type), failed)
    others = [table.column(e) for e in FAILURE_EVENTS if e in known and e != "failed"]
    return pc.coalesce(failed, *others) if others else failed


def _summed(parts: Iterable[list[tuple[Any, ...]]]) -> list[tuple[Any, ...]]:
    """Counters of parts of the recipients, summed per device type."""
    summed: dict[Any, list[int]] = {}
    for part in parts:
        for device_type, *values in part:
            slot = summed.setdefault(device_type, [0] * len(values))
            for i, value in enumerate(values):
                slot[i] += int(value)
    return [(device_type, *values) for device_type, values in summed.items()]


# The timeline's finest bucket; every coarser one is a multiple of it.
MINUTE = 60


def timeline(raw: Any, message_pk: int, channel: str, series: tuple[str, ...],
             bucket_for: Callable[[int, int], int]) -> tuple[int, list[tuple[str, int, int]]]:
    """Recipients per event of `series` and time bucket (of the width bucket_for(first,
    last) gives, a multiple of a minute), for the chart: (bucket width, [(event, bucket
    start, recipients)]); width 0 when there is nothing to draw."""
    known = [e for e in series if e in CHANNEL_EVENTS[channel]]
    if not known:
        return 0, []
    per_minute: dict[tuple[str, int], int] = {}
    sql = " UNION ALL ".join(
        f"(SELECT '{e}', ({e} // {MINUTE}) * {MINUTE} AS bucket, count(*) FROM r"
        f" WHERE {e} IS NOT NULL GROUP BY bucket)" for e in known)
    for con, _ in _recipients(raw, message_pk, channel, ()):
        for event, at, n in con.sql(sql).fetchall():
            per_minute[(str(event), int(at))] = per_minute.get((str(event), int(at)), 0) + int(n)
    if not per_minute:
        return 0, []
    minutes = [at for _, at in per_minute]
    width = bucket_for(min(minutes), max(minutes) + MINUTE - 1)
    buckets: dict[tuple[str, int], int] = {}
    for (event, at), n in per_minute.items():
        key = (event, at // width * width)
        buckets[key] = buckets.get(key, 0) + n
    return width, [(e, at, n) for (e, at), n in buckets.items()]


def sample(raw: Any, message_pk: int, channel: str, events: list[str],
           limit: int) -> list[dict[str, Any]]:
    """The first recipients by subscription id, those with one of `events` if given."""
    found: list[dict[str, Any]] = []
    columns = ", ".join(("subscription_id", *ATTRIBUTES, *CHANNEL_EVENTS[channel]))
    with closing(_recipients(raw, message_pk, channel)) as parts:
        for con, _ in parts:
            found += con.sql(f"SELECT {columns} FROM r WHERE {where_any(events)}"
                             f" ORDER BY subscription_id LIMIT {int(limit - len(found))}"
                             ).to_arrow_table().to_pylist()
            if len(found) >= limit:
                break
    return found


PAGE_ROWS = 16_384
# LZ4 on the calling thread: Arrow's thread pool compressed no faster here (a build of
# 1,000,000 recipients 3.24 s either way) and held ~58 MB more at its peak; reading
# pages unthreaded was no slower either (0.57-0.62 s against 0.64-0.69 s).
_PAGE_IPC = ipc.IpcWriteOptions(compression="lz4", use_threads=False)
_PAGE_READ = ipc.IpcReadOptions(use_threads=False)


def pages_sql(channel: str, source: str) -> str:
    """What a page holds, before its lines (`with_lines`): each recipient's row of
    `source` (a query of the pivot's columns), in the pivot's column order, in key
    order."""
    return (f"SELECT subscription_id, {', '.join(ATTRIBUTES)},"
            f" {', '.join(CHANNEL_EVENTS[channel])}"
            f" FROM ({source}) ORDER BY subscription_id")


def with_lines(table: pa.Table, channel: str) -> pa.Table:
    """The page's rows with each recipient's line and, only where it differs (a
    formula cell), its raw line. Most pages have no formula cell: their raw lines are
    not built (a third of a page build's line work)."""
    if not csv_schema.has_formula(table, channel):  # then neutralising changes nothing
        line = csv_schema.lines(table, channel, safe=False)
        return table.append_column("line", line).append_column(
            "raw_line", pa.nulls(len(line), pa.string()))
    safe = csv_schema.lines(table, channel)
    raw = csv_schema.lines(table, channel, safe=False)
    differs = pc.not_equal(raw, safe)
    return table.append_column("line", safe).append_column(
        "raw_line", pc.if_else(differs, raw, pa.nulls(len(raw), pa.string())))


def build_pages(engine: Engine, message_pk: int) -> bool:
    """Store the message's recipients as pages, unless its pages are current; True when
    new pages were published. Pages are written under a new generation in small
    transactions (ingestion is never held up for long), and published by one update of
    the message once all are there; a build that crashed leaves only an unpublished
    generation, deleted by the next build."""
    with activity.snapshot(engine) as raw:
        [(upto, published, channel)] = activity.query(
            raw, "SELECT next_batch, pages_upto, target_channel FROM messages WHERE id = ?",
            (message_pk,))
        if published == upto:
            return False
        generation = secrets.randbits(62)
        count = 0
        # Pages a few events behind are merged with them (only the recipients with newer
        # events are built again); anything else is pivoted whole.
        behind = mergeable_pages(raw, message_pk)
        # (Merged pages grow with new recipients: they are cut to PAGE_ROWS again.)
        tables = (_resliced(_merged_pages(raw, message_pk, str(channel), *behind), PAGE_ROWS)
                  if behind is not None else _pivoted_pages(raw, message_pk, str(channel)))
        for table in tables:
            sink = pa.BufferOutputStream()
            with ipc.new_stream(sink, table.schema, options=_PAGE_IPC) as writer:
                writer.write_table(table)
            with engine.begin() as conn:
                conn.execute(text(
                    "INSERT INTO recipient_pages (message_pk, generation, page, rows, data)"
                    " VALUES (:pk, :g, :page, :rows, :data)"),
                    {"pk": message_pk, "g": generation, "page": count,
                     "rows": table.num_rows, "data": sink.getvalue().to_pybytes()})
            count += 1
    with engine.begin() as conn:
        # Published only if every page is there (a concurrent build may have deleted
        # some) and nothing newer was published meanwhile.
        mine = conn.execute(text("SELECT count(*) FROM recipient_pages"
                                 " WHERE message_pk = :pk AND generation = :g"),
                            {"pk": message_pk, "g": generation}).scalar_one()
        done = mine == count and conn.execute(text(
            "UPDATE messages SET pages_generation = :g, pages_upto = :upto"
            " WHERE id = :pk AND (pages_upto IS NULL OR pages_upto < :upto)"),
            {"g": generation, "upto": upto, "pk": message_pk}).rowcount == 1
        kept = generation if done else conn.execute(text(
            "SELECT pages_generation FROM messages WHERE id = :pk"),
            {"pk": message_pk}).scalar()
        conn.execute(text("DELETE FROM recipient_pages WHERE message_pk = :pk"
                          " AND generation <> :g"), {"pk": message_pk, "g": kept or 0})
    return done


def _pivoted_pages(raw: Any, message_pk: int, channel: str) -> Iterator[pa.Table]:
    """Each range's recipients in pages of PAGE_ROWS at most (a range's last page may
    hold fewer)."""
    # No range read ahead: a build is bound by its own thread (lines, pages, writes),
    # and two ranges fewer in memory kept its peak 27 MB lower (1,000,000 recipients:
    # +130 MB over the process's base instead of +160, in the same 4.2-4.4 s). And no
    # range is held while the next is read: neither its events nor, through a page
    # carried over to fill the next range's first page, its pivot (+97 MB anonymous
    # instead of +114, 2 runs each, in the same 2.5-2.8 s).
    with split(raw, message_pk) as sources, connect() as con:
        for source in sources:
            batches = pivot(con, source(), channel).to_batches(PAGE_ROWS)
            while batches:
                yield with_lines(pa.Table.from_batches([batches.pop(0)]), channel)


def _resliced(tables: Iterable[pa.Table], rows: int) -> Iterator[pa.Table]:
    """The tables' rows, in order, in tables of `rows` (the last may hold fewer)."""
    pending: list[pa.Table] = []
    held = 0
    for table in tables:
        pending.append(table)
        held += table.num_rows
        while held >= rows:
            whole = pa.concat_tables(pending)
            yield whole.slice(0, rows)
            pending, held = [whole.slice(rows)], held - rows
    if held:
        yield pa.concat_tables(pending)


# An export of a message with pages merges at most this many newer events into them
# as it reads them; with more, it pivots everything.
MERGE_EVENTS = PASS_EVENTS


def mergeable_pages(raw: Any, message_pk: int) -> tuple[int, int] | None:
    """(generation, last batch they hold) of the message's pages if they are behind by
    no more than MERGE_EVENTS events, else None."""
    found = activity.query(raw, "SELECT pages_upto, pages_generation FROM messages"
                           " WHERE id = ?", (message_pk,))
    if not found or found[0][0] is None or found[0][1] is None:
        return None
    upto, generation = int(found[0][0]), int(found[0][1])
    if not activity.query(raw, "SELECT 1 FROM recipient_pages WHERE message_pk = ?"
                          " AND generation = ? LIMIT 1", (message_pk, generation)):
        return None
    [(newer,)] = activity.query(
        raw, "SELECT coalesce(sum(events), 0) FROM activity_segments"
        " WHERE message_pk = ? AND last_batch > ?", (message_pk, upto))
    return (generation, upto) if int(newer) <= MERGE_EVENTS else None


def recipient_pages(raw: Any, message_pk: int, channel: str,
                    on_total: Callable[[int], None] | None = None
                    ) -> Generator[pa.Table, None, None] | None:
    """The message's recipients as page tables (the columns of `pages_sql` and `with_lines`) in key
    order, holding every event the snapshot sees: its stored pages, merged with the
    events newer than them if those are few; None if neither (the caller pivots)."""
    generation = current_pages(raw, message_pk)
    if generation is not None:
        if on_total is not None:
            on_total(_stored_rows(raw, message_pk, generation))
        return _pages(raw, message_pk, generation)
    behind = mergeable_pages(raw, message_pk)
    if behind is not None:
        return _merged_pages(raw, message_pk, channel, *behind, on_total=on_total)
    return None


def _stored_rows(raw: Any, message_pk: int, generation: int) -> int:
    """Recipients in the message's pages of that generation."""
    [(rows,)] = activity.query(
        raw, "SELECT coalesce(sum(rows), 0) FROM recipient_pages WHERE message_pk = ?"
        " AND generation = ?", (message_pk, generation))
    return int(rows)


def _merged_pages(raw: Any, message_pk: int, channel: str, generation: int, upto: int,
                  on_total: Callable[[int], None] | None = None
                  ) -> Generator[pa.Table, None, None]:
    """The stored pages merged with the events recorded after them (batches after
    `upto`), as the pivot of all of them would give: every page event precedes every
    newer one in `rec`, so an attribute is the page's if it has one, else the newer
    events' first; each time is the earlier. Only recipients with newer events get
    their lines built again."""
    newer = [b.filter(pc.greater(pc.shift_right(b.column("rec"), REC_BITS), upto))
             for data in activity.segments(raw, message_pk, after_batch=upto)
             for b in activity.decode(data)]
    # The page rows (p) of the recipients with newer events (d), merged.
    merged = pages_sql(channel, "SELECT d.subscription_id, "
                       + ", ".join(f"coalesce(p.{a}, d.{a}) AS {a}" for a in ATTRIBUTES) + ", "
                       + ", ".join(f"least(p.{e}, d.{e}) AS {e}" for e in CHANNEL_EVENTS[channel])
                       + " FROM d LEFT JOIN p ON p.subscription_id = d.subscription_id")
    with connect() as con:
        con.register("d", pivot(con, pa.Table.from_batches(newer, SCHEMA), channel,
                                ordered=False))
        newer_subs = con.sql("SELECT subscription_id FROM d").to_arrow_table().column(0)
        newer_subs = newer_subs.combine_chunks()
        # Two reads of the pages: the first finds the page rows the newer events change,
        # merged in one query (a query per page cost ~35 ms of planning, whatever its
        # size); the second puts the merged rows in their places.
        touched = [page.filter(pc.is_in(page.column("subscription_id"),
                                        value_set=newer_subs))
                   for page in _pages(raw, message_pk, generation)]
        con.register("p", pa.concat_tables(touched))
        changed = with_lines(con.sql(merged).to_arrow_table(), channel).cast(
            touched[0].schema)
    if on_total is not None:  # the pages' recipients, and those new in the newer events
        on_total(_stored_rows(raw, message_pk, generation) + changed.num_rows
                 - sum(t.num_rows for t in touched))
    subs = changed.column("subscription_id")
    start = 0
    for page in _pages(raw, message_pk, generation):
        # The page's changed recipients: those up to its last one (both are sorted).
        bound = page.column("subscription_id")[-1]
        end = start + (pc.sum(pc.less_equal(subs.slice(start), bound)).as_py() or 0)
        yield _merged_page(page, changed.slice(start, end - start))
        start = end
    if start < changed.num_rows:  # new recipients after the last page
        yield changed.slice(start)


def _merged_page(page: pa.Table, changed: pa.Table) -> pa.Table:
    """The page with its changed rows in place of its own, in key order."""
    if not changed.num_rows:
        return page
    kept = page.filter(pc.invert(pc.is_in(page.column("subscription_id"),
                                          value_set=changed.column("subscription_id")
                                          .combine_chunks())))
    whole = pa.concat_tables([kept, changed])
    return whole.take(pc.sort_indices(whole, [("subscription_id", "ascending")]))


def current_pages(raw: Any, message_pk: int) -> int | None:
    """The generation of the message's pages if they hold every event the snapshot
    sees, else None."""
    found = activity.query(raw, "SELECT next_batch, pages_upto, pages_generation"
                           " FROM messages WHERE id = ?", (message_pk,))
    row = found[0] if found else None
    return int(row[2]) if row and row[1] is not None and row[1] == row[0] else None


def _pages(raw: Any, message_pk: int, generation: int) -> Generator[pa.Table, None, None]:
    """The message's stored pages of that generation, in key order."""
    pages = [r[0] for r in activity.query(
        raw, "SELECT page FROM recipient_pages WHERE message_pk = ? AND generation = ?"
        " ORDER BY page", (message_pk, generation))]
    for page in pages:
        [(data,)] = activity.query(
            raw, "SELECT data FROM recipient_pages WHERE message_pk = ? AND generation = ?"
            " AND page = ?", (message_pk, generation, page))
        yield ipc.open_stream(pa.py_buffer(data), options=_PAGE_READ).read_all()


def _with_any(table: pa.Table, events: list[str]) -> pa.Table:
    """Only the page's recipients with one of `events` (all if none are given)."""
    if not events:
        return table
    keep = pc.is_valid(table.column(events[0]))
    for e in events[1:]:
        keep = pc.or_(keep, pc.is_valid(table.column(e)))
    return table.filter(keep)


def page_rows(pages: Iterable[pa.Table], events: list[str]) -> Generator[pa.Table, None, None]:
    """Each page's recipients with one of `events` (or all), in subscription order."""
    for page in pages:
        table = _with_any(page, events)
        if table.num_rows:
            yield table


def page_lines(pages: Iterable[pa.Table], events: list[str],
               raw_cells: bool) -> Iterator[tuple[memoryview, int]]:
    """(lines, count) per page, in subscription order: the recipients with one of
    `events` (or all), their raw lines if `raw_cells`."""
    for table in page_rows(pages, events):
        column = table.column("line")
        if raw_cells:
            column = pc.coalesce(table.column("raw_line"), column)
        yield csv_schema.joined(column.combine_chunks()), table.num_rows
