"""A message's recipients kept as sorted pages of finished CSV lines once its events go
quiet (`recipient_pages`, Arrow IPC). A read of a message that has had no event since
reads the pages instead of pivoting, at the speed of reading and compressing lines
(docs/benchmarks.md). Pages a few events behind are merged with the newer events as
they are read, and the next build merges them the same way; with more newer events
than MERGE_EVENTS, a read pivots everything. The pages are derived data: deleting them
loses nothing."""

from __future__ import annotations

import secrets
from collections.abc import Callable, Generator, Iterable, Iterator
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.ipc as ipc
from sqlalchemy import Engine, delete, func, insert, select

from msgtrail import csv_schema
from msgtrail.db import statements as sql
from msgtrail.db.schema import messages
from msgtrail.db.schema import recipient_pages as pages_table
from msgtrail.store import activity, duck_sql
from msgtrail.store.event_batch import REC_BITS, SCHEMA
from msgtrail.store.pivot import connect, pivot, split

PAGE_ROWS = 16_384


# Zstandard level 1 on the calling thread. Random ids are hex, which LZ4 (no entropy
# coding) barely shrinks: zstd stores a 1,000,000-recipient message's pages in 98 MB
# against LZ4's 181 MB, for 0.2 s more of building. Reading only the columns an
# export needs (`columns`) keeps its read as fast as LZ4's of every column. Arrow's
# thread pool compressed no faster here and held more memory at its peak; reading
# pages unthreaded was no slower either (docs/benchmarks.md, "Figures behind the code").
_PAGE_IPC = ipc.IpcWriteOptions(compression=pa.Codec("zstd", 1), use_threads=False)


def line_columns(events: list[str], raw_cells: bool) -> list[str]:
    """The page columns an export of stored lines reads (see page_lines)."""
    return ["line", *(["raw_line"] if raw_cells else []), *events]


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


def build_pages(engine: Engine, message_pk: int, pause: Callable[[], None] = lambda: None
                ) -> bool:
    """Store the message's recipients as pages, unless its pages are current; True when
    new pages were published. Pages are written under a new generation in small
    transactions (ingestion is never held up for long), and published by one update of
    the message once all are there; a build that crashed leaves only an unpublished
    generation, deleted by the next build. `pause` is called after each page is
    written (what the build holds meanwhile: its snapshot, and at most one range's
    pivot)."""
    with activity.snapshot(engine) as raw:
        [(upto, published, _, channel)] = activity.query(raw, sql.MESSAGE_PAGES_STATE,
                                                         pk=message_pk)
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
                conn.execute(insert(pages_table).values(
                    message_pk=message_pk, generation=generation, page=count,
                    rows=table.num_rows, data=sink.getvalue().to_pybytes()))
            count += 1
            del table, sink
            pause()
    with engine.begin() as conn:
        # Published only if every page is there (a concurrent build may have deleted
        # some) and nothing newer was published meanwhile.
        mine = conn.execute(select(func.count()).select_from(pages_table).where(
            pages_table.c.message_pk == message_pk,
            pages_table.c.generation == generation)).scalar_one()
        done = mine == count and conn.execute(sql.PUBLISH_PAGES, {
            "g": generation, "upto": upto, "pk": message_pk}).rowcount == 1
        kept = generation if done else conn.execute(select(messages.c.pages_generation).where(
            messages.c.id == message_pk)).scalar()
        conn.execute(delete(pages_table).where(
            pages_table.c.message_pk == message_pk,
            pages_table.c.generation != (kept or 0)))
    return done


def _pivoted_pages(raw: Any, message_pk: int, channel: str) -> Iterator[pa.Table]:
    """Each range's recipients in pages of PAGE_ROWS at most (a range's last page may
    hold fewer)."""
    # No range read ahead: a build is bound by its own thread (lines, pages, writes),
    # and two ranges fewer in memory keep its peak lower at the same speed. And no
    # range is held while the next is read: neither its events nor, through a page
    # carried over to fill the next range's first page, its pivot (docs/benchmarks.md,
    # "Figures behind the code").
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
# as it reads them; with more, it pivots everything (about as fast beyond:
# docs/internals/store.md).
MERGE_EVENTS = 200_000


def mergeable_pages(raw: Any, message_pk: int) -> tuple[int, int] | None:
    """(generation, last batch they hold) of the message's pages if they are behind by
    no more than MERGE_EVENTS events, else None."""
    found = activity.query(raw, sql.MESSAGE_PAGES_STATE, pk=message_pk)
    if not found or found[0][1] is None or found[0][2] is None:
        return None
    upto, generation = int(found[0][1]), int(found[0][2])
    if not activity.query(raw, sql.ANY_PAGE, pk=message_pk, g=generation):
        return None
    [(newer,)] = activity.query(raw, sql.NEWER_EVENTS, pk=message_pk, after=upto)
    return (generation, upto) if int(newer) <= MERGE_EVENTS else None


def recipient_pages(raw: Any, message_pk: int, channel: str,
                    on_total: Callable[[int], None] | None = None,
                    columns: list[str] | None = None
                    ) -> Generator[pa.Table, None, None] | None:
    """The message's recipients as page tables (the columns of `duck_sql.page` and
    `with_lines`, at least `columns` if given) in key order, holding every event the
    snapshot sees: its stored pages, merged with the events newer than them if those
    are few; None if neither (the caller pivots)."""
    generation = current_pages(raw, message_pk)
    if generation is not None:
        if on_total is not None:
            on_total(_stored_rows(raw, message_pk, generation))
        return _pages(raw, message_pk, generation, columns)
    behind = mergeable_pages(raw, message_pk)
    if behind is not None:
        return _merged_pages(raw, message_pk, channel, *behind, on_total=on_total)
    return None


def _stored_rows(raw: Any, message_pk: int, generation: int) -> int:
    """Recipients in the message's pages of that generation."""
    [(rows,)] = activity.query(raw, sql.PAGES_ROWS, pk=message_pk, g=generation)
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
    merged = duck_sql.merged_page_rows(channel)
    with connect() as con:
        con.register("d", pivot(con, pa.Table.from_batches(newer, SCHEMA), channel,
                                ordered=False))
        newer_subs = con.sql("SELECT subscription_id FROM d").to_arrow_table().column(0)
        newer_subs = newer_subs.combine_chunks()
        # Two reads of the pages: the first finds the page rows the newer events change,
        # merged in one query (a query per page pays DuckDB's planning each time,
        # whatever its size); the second puts the merged rows in their places.
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
    found = activity.query(raw, sql.MESSAGE_PAGES_STATE, pk=message_pk)
    row = found[0] if found else None
    return int(row[2]) if row and row[1] is not None and row[1] == row[0] else None


def stored_pages(raw: Any, message_pk: int) -> Generator[pa.Table, None, None] | None:
    """The message's pages as last published, however many events came since (a
    page of the dashboard shows them as of when they were built); None if it has
    none yet."""
    generation = published(raw, message_pk)
    return None if generation is None else _pages(raw, message_pk, generation)


def published(raw: Any, message_pk: int) -> int | None:
    """The generation of the message's pages as last published, current or not."""
    found = activity.query(raw, sql.MESSAGE_PAGES_STATE, pk=message_pk)
    return int(found[0][2]) if found and found[0][2] is not None else None


def _pages(raw: Any, message_pk: int, generation: int, columns: list[str] | None = None
           ) -> Generator[pa.Table, None, None]:
    """The message's stored pages of that generation, in key order: only `columns`
    decoded, if given."""
    pages = [r[0] for r in activity.query(raw, sql.PAGE_NUMBERS, pk=message_pk, g=generation)]
    options = None
    for page in pages:
        [(data,)] = activity.query(raw, sql.PAGE_DATA, pk=message_pk, g=generation, page=page)
        buffer = pa.py_buffer(data)
        if options is None:  # every page of a generation has the same schema
            names = ipc.open_stream(buffer).schema.names
            options = ipc.IpcReadOptions(use_threads=False, included_fields=(
                None if columns is None else sorted(names.index(c) for c in columns)))
        yield ipc.open_stream(buffer, options=options).read_all()


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
