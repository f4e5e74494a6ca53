"""What the API and the dashboard read of a message's recipients: its counters, its
activity over time and a sample of its recipients, from its pages when they are
current, else from the pivot."""

from __future__ import annotations

from collections.abc import Callable, Generator
from contextlib import closing
from typing import Any

import duckdb
import pyarrow as pa

from msgtrail.channels import CHANNEL_EVENTS
from msgtrail.store import duck_sql
from msgtrail.store.pages import recipient_pages
from msgtrail.store.pivot import ATTRIBUTES, connect, passes, pivot
from msgtrail.store.tally import counted, summed


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


def counts(raw: Any, message_pk: int, channel: str,
           pause: Callable[[], None] = lambda: None) -> list[tuple[Any, ...]]:
    """(device_type, recipients, failed, count per event of EVENTS) per device type;
    `pause` is called after each page or range is counted."""
    def each() -> Generator[list[tuple[Any, ...]], None, None]:
        for _, table in _recipients(raw, message_pk, channel, ("device_type",)):
            yield counted(table, channel)
            pause()
    return summed(each())


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
    sql, params = duck_sql.per_minute(known), duck_sql.per_minute_params(known, MINUTE)
    for con, _ in _recipients(raw, message_pk, channel, ()):
        for event, at, n in con.sql(sql, params=params).fetchall():
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
    sql = duck_sql.first_recipients(channel, events)
    with closing(_recipients(raw, message_pk, channel)) as parts:
        for con, _ in parts:
            found += con.sql(sql, params=[limit - len(found)]).to_arrow_table().to_pylist()
            if len(found) >= limit:
                break
    return found
