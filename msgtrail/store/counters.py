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
from msgtrail.store.pages import recipient_pages, stored_pages
from msgtrail.store.pivot import ATTRIBUTES, connect, passes, pivot
from msgtrail.store.tally import counted, summed


def _recipients(raw: Any, message_pk: int, channel: str,
                attributes: tuple[str, ...] = ATTRIBUTES, kept: bool = False
                ) -> Generator[tuple[duckdb.DuckDBPyConnection, pa.Table], None, None]:
    """Each part of the message's recipients in turn, in key order (at least the
    pivot's times and those `attributes`), with one DuckDB connection that sees it as
    `r`: its pages when they hold every event or are a few behind (`recipient_pages`),
    else the pivot's passes; with `kept`, its pages as last built, however far behind
    (none if it has none)."""
    pages = stored_pages(raw, message_pk) if kept else recipient_pages(raw, message_pk, channel)
    if pages is None and kept:
        return
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
# The timeline's buckets, in seconds, each a multiple of the one before: a message's
# activity is spread over at most MAX_BUCKETS of the smallest that fits it.
BUCKETS = (60, 300, 900, 3600, 6 * 3600, 86400)
MAX_BUCKETS = 48

Timeline = tuple[int, list[tuple[str, int, int]]]


def bucket_for(first: int, last: int) -> int:
    """The smallest bucket that spreads first..last over at most MAX_BUCKETS."""
    span = max(last - first, 1)
    for seconds in BUCKETS:
        if span / seconds <= MAX_BUCKETS:
            return seconds
    return BUCKETS[-1]


class _PerMinute:
    """Recipients per event and minute, summed over the parts of a message."""

    def __init__(self, channel: str) -> None:
        self.events = list(CHANNEL_EVENTS[channel])
        self.sql = duck_sql.per_minute(self.events)
        self.params = duck_sql.per_minute_params(self.events, MINUTE)
        self.found: dict[tuple[str, int], int] = {}

    def add(self, con: duckdb.DuckDBPyConnection) -> None:
        for event, at, n in con.sql(self.sql, params=self.params).fetchall():
            key = (str(event), int(at))
            self.found[key] = self.found.get(key, 0) + int(n)

    def bucketed(self) -> Timeline:
        """(bucket width, [(event, bucket start, recipients)]); width 0 when empty."""
        if not self.found:
            return 0, []
        minutes = [at for _, at in self.found]
        width = bucket_for(min(minutes), max(minutes) + MINUTE - 1)
        buckets: dict[tuple[str, int], int] = {}
        for (event, at), n in self.found.items():
            key = (event, at // width * width)
            buckets[key] = buckets.get(key, 0) + n
        return width, sorted((e, at, n) for (e, at), n in buckets.items())


def timeline(raw: Any, message_pk: int, channel: str) -> Timeline:
    """Recipients per event of the channel and time bucket (`bucket_for` the span of the
    activity), for the chart: (bucket width, [(event, bucket start, recipients)]);
    width 0 when there is nothing to draw. The counters keep one (`counts_and_timeline`);
    this reads it afresh."""
    per_minute = _PerMinute(channel)
    for con, _ in _recipients(raw, message_pk, channel, ()):
        per_minute.add(con)
    return per_minute.bucketed()


# The recipients a recount keeps for a report to list before the message has pages.
FIRST_RECIPIENTS = 50


def counts_and_timeline(raw: Any, message_pk: int, channel: str,
                        pause: Callable[[], None] = lambda: None
                        ) -> tuple[list[tuple[Any, ...]], Timeline, list[dict[str, Any]]]:
    """`counts`, `timeline` and the FIRST_RECIPIENTS first recipients (`sample`) in one
    pass over the recipients: what a recount keeps, so that a report reads them
    instead of every recipient per view."""
    per_minute = _PerMinute(channel)
    first: list[dict[str, Any]] = []
    first_sql = duck_sql.first_recipients(channel, [], False, False)

    def each() -> Generator[list[tuple[Any, ...]], None, None]:
        for con, table in _recipients(raw, message_pk, channel):
            per_minute.add(con)
            if len(first) < FIRST_RECIPIENTS:  # (the parts come in key order)
                first.extend(con.sql(first_sql, params=[FIRST_RECIPIENTS - len(first)])
                             .to_arrow_table().to_pylist())
            yield counted(table, channel)
            pause()
    counted_rows = summed(each())
    return counted_rows, per_minute.bucketed(), first


def sample(raw: Any, message_pk: int, channel: str, events: list[str], limit: int,
           after: str | None = None, find: str | None = None, kept: bool = False
           ) -> list[dict[str, Any]]:
    """The first recipients by subscription id, those with one of `events` if given,
    past the subscription id `after` (keyset paging), or only the one `find` names by
    its subscription id or external id; with `kept`, as the pages last built hold
    them (none without pages)."""
    found: list[dict[str, Any]] = []
    sql = duck_sql.first_recipients(channel, events, after is not None, find is not None)
    given = [*([after] if after is not None else []), *([find, find] if find is not None
                                                        else [])]
    with closing(_recipients(raw, message_pk, channel, kept=kept)) as parts:
        for con, _ in parts:
            found += con.sql(sql, params=[*given, limit - len(found)]
                             ).to_arrow_table().to_pylist()
            if len(found) >= limit:
                break
    return found
