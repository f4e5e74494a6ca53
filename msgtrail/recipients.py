"""A message's recipients: its events pivoted to one row per subscription, in DuckDB.

Every reader (exports, history reports, counters, the dashboard) asks here, and the
answer reflects every event committed before it asked: the store keeps events as they
came (`msgtrail.activity`), and DuckDB groups them by subscription as they stream in,
on both cores, spilling to disk beyond `MEMORY_LIMIT`. One pivot, one place:

- each event's time is the earliest of its repeats;
- each attribute is its first known value, in the order msgtrail accepted the events
  (`rec`), whichever event carried it.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterator
from typing import Any

import duckdb
import pyarrow as pa

from msgtrail import activity, csv_schema
from msgtrail.channels import CHANNEL_EVENTS, EVENT_CODE, EVENTS, FAILURE_EVENTS
from msgtrail.db.dialect import DUCKDB

ATTRIBUTES = ("onesignal_id", "external_id", "device_type", "failure_message")
# DuckDB's share of the process: a 1,000,000-recipient pivot spills past it instead of
# growing the process (the serve process stays under 300 MB; README, benchmarks).
MEMORY_LIMIT = "128MB"
THREADS = 2
CHUNK_ROWS = 50_000


def connect() -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB for one read."""
    spill = os.path.join(tempfile.gettempdir(), "msgtrail-duckdb")
    return duckdb.connect(config={"threads": THREADS, "memory_limit": MEMORY_LIMIT,
                                  "temp_directory": spill,
                                  "preserve_insertion_order": False})


def pivot_sql(channel: str) -> str:
    """Per-recipient rows from the `events` relation: subscription_id, the attributes,
    and one column per event of the channel holding its earliest time."""
    attrs = ", ".join(f"arg_min({a}, rec) FILTER (WHERE {a} IS NOT NULL) AS {a}"
                      for a in ATTRIBUTES)
    times = ", ".join(f"min(ts) FILTER (WHERE event = {EVENT_CODE[e]}) AS {e}"
                      for e in CHANNEL_EVENTS[channel])
    return f"SELECT subscription_id, {attrs}, {times} FROM events GROUP BY subscription_id"


def where_any(events: list[str]) -> str:
    """Only recipients with at least one of these events (names already validated)."""
    return " OR ".join(f"{e} IS NOT NULL" for e in events) if events else "true"


def export_line(channel: str, raw: bool) -> str:
    """A recipient's audience-activity CSV line; unless `raw`, formula cells are
    neutralised."""
    return csv_schema.line_sql(channel, lambda c: c, DUCKDB, safe=not raw)


def lines(raw: Any, message_pk: int, channel: str, line: str,
          events: list[str]) -> Iterator[tuple[bytes, int]]:
    """(lines, count) chunks of the message's recipients (those with one of `events`,
    or all), ordered by subscription id, each line built by the SQL `line`."""
    con = connect()
    try:
        con.register("events", activity.reader(raw, message_pk))
        result = con.sql(f"SELECT ({line}) || chr(10) AS line FROM ({pivot_sql(channel)})"
                         f" WHERE {where_any(events)} ORDER BY subscription_id")
        for batch in result.to_arrow_reader(CHUNK_ROWS):
            if batch.num_rows:
                yield _joined(batch.column(0)), batch.num_rows
    finally:
        con.close()


def _joined(column: pa.Array) -> bytes:
    """The column's strings end to end: its data buffer between the first and last
    offsets (each already ends in a newline), without a Python string per line."""
    if column.type != pa.large_string():
        column = column.cast(pa.large_string())
    offsets = memoryview(column.buffers()[1]).cast("q")
    start, end = offsets[column.offset], offsets[column.offset + len(column)]
    data = column.buffers()[2]
    return b"" if data is None else data[start:end].to_pybytes()


def counts(raw: Any, message_pk: int, channel: str) -> list[tuple[Any, ...]]:
    """(device_type, recipients, failed, count per event of EVENTS) per device type."""
    failed = " OR ".join(f"{e} IS NOT NULL" for e in FAILURE_EVENTS
                         if e in CHANNEL_EVENTS[channel]) or "false"
    per_event = ", ".join(f"count({e})" if e in CHANNEL_EVENTS[channel] else "0"
                          for e in EVENTS)
    return _query(raw, message_pk,
                  f"SELECT device_type, count(*), count(*) FILTER (WHERE {failed}),"
                  f" {per_event} FROM ({pivot_sql(channel)}) GROUP BY device_type")


def timeline(raw: Any, message_pk: int, channel: str, series: tuple[str, ...],
             bucket_for: Callable[[int, int], int]) -> tuple[int, list[tuple[str, int, int]]]:
    """Recipients per event of `series` and time bucket (of the width bucket_for(first,
    last) gives), for the chart: (bucket width, [(event, bucket start, recipients)]);
    width 0 when there is nothing to draw."""
    known = [e for e in series if e in CHANNEL_EVENTS[channel]]
    if not known:
        return 0, []
    con = connect()
    try:
        con.register("events", activity.reader(raw, message_pk))
        con.execute(f"CREATE TEMP TABLE r AS SELECT {', '.join(known)}"
                    f" FROM ({pivot_sql(channel)})")
        lows = ", ".join(f"min({e})" for e in known)
        highs = ", ".join(f"max({e})" for e in known)
        bounds = con.execute(f"SELECT least({lows}), greatest({highs}) FROM r").fetchall()[0]
        if bounds[0] is None:
            return 0, []
        width = bucket_for(int(bounds[0]), int(bounds[1]))
        rows = con.sql(" UNION ALL ".join(
            f"(SELECT '{e}', ({e} // {width}) * {width} AS bucket, count(*) FROM r"
            f" WHERE {e} IS NOT NULL GROUP BY bucket)" for e in known)).fetchall()
    finally:
        con.close()
    return width, [(str(e), int(at), int(n)) for e, at, n in rows]


def sample(raw: Any, message_pk: int, channel: str, events: list[str],
           limit: int) -> list[dict[str, Any]]:
    """The first recipients by subscription id, those with one of `events` if given."""
    con = connect()
    try:
        con.register("events", activity.reader(raw, message_pk))
        table = con.sql(f"SELECT * FROM ({pivot_sql(channel)}) WHERE {where_any(events)}"
                        f" ORDER BY subscription_id LIMIT {int(limit)}").to_arrow_table()
    finally:
        con.close()
    return table.to_pylist()


def _query(raw: Any, message_pk: int, sql: str) -> list[tuple[Any, ...]]:
    con = connect()
    try:
        con.register("events", activity.reader(raw, message_pk))
        return con.sql(sql).fetchall()
    finally:
        con.close()
