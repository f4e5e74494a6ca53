"""What a page shows of a message without counting its recipients for the view: the
counters, the chart's timeline and the recipients' pages the store keeps (`upkeep`
brings them up to date once events pause). A message never counted is counted by
the view only while it is small; a bigger one is counted on a thread of its own
while its page says so: its first count (1.0-1.3 s at 1,000,000 recipients,
docs/benchmarks.md) held every view of it meanwhile."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from sqlalchemy import Engine

from msgtrail import messages
from msgtrail.db import statements as sql
from msgtrail.messages import Message
from msgtrail.store import activity, counters, pages, upkeep

log = logging.getLogger(__name__)

# A view counts or pivots a message itself up to this many events: ~60 ms for
# 100,000 here, within a page's budget of 300 ms with the rest of the page.
VIEW_PIVOT_EVENTS = 100_000


def small(engine: Engine, message_pk: int) -> bool:
    """Whether a view may count the message itself (VIEW_PIVOT_EVENTS)."""
    with activity.snapshot(engine) as raw:
        return _small(raw, message_pk)


def _small(raw: Any, message_pk: int) -> bool:
    [(events,)] = activity.query(raw, sql.NEWER_EVENTS, pk=message_pk, after=-1)
    return int(events) <= VIEW_PIVOT_EVENTS


def timeline(message: Message) -> counters.Timeline | None:
    """The chart's timeline its counters keep, if they keep one."""
    found = (message.stats or {}).get("timeline")
    if found is None:
        return None
    return int(found["bucket"]), [(str(e), int(at), int(n)) for e, at, n in found["rows"]]


def read_timeline(engine: Engine, message: Message) -> counters.Timeline:
    """The timeline read afresh, then kept beside the counters while they are
    current. (Counters an export stored carry none: its pivot counts, but does not
    bucket times.)"""
    with activity.snapshot(engine) as raw:
        [(seen,)] = activity.query(raw, sql.MESSAGE_BATCHES, pk=message.pk)
        found = counters.timeline(raw, message.pk, message.target_channel)
    upkeep.keep_timeline(engine, message.pk, int(seen), found)
    return found


def recipients(engine: Engine, message: Message, events: list[str], limit: int,
               after: str | None, find: str | None) -> list[dict[str, Any]] | None:
    """`counters.sample` as the pages last built hold it, however many events came
    since; pivoted if the message has no pages yet and is small; else the first
    recipients its counters keep, if that is what is asked; else None (`Counting`
    builds the pages)."""
    channel = message.target_channel
    with activity.snapshot(engine) as raw:
        stored = pages.published(raw, message.pk) is not None
        if stored or _small(raw, message.pk):
            return counters.sample(raw, message.pk, channel, events, limit, after, find,
                                   kept=stored)
    first = (message.stats or {}).get("first")
    plain = not events and after is None and find is None
    return first[:limit] if first is not None and plain else None


class _Stopped(Exception):
    """The process is stopping: a count or build in progress gives up between two
    steps (a build's pages are left unpublished, deleted by the next build)."""


class Counting:
    """Counts big messages that views found never counted, or without pages, one at
    a time on a thread of its own: the counters and chart first, then the recipients'
    pages (without waiting for the upkeep, which waits for events to pause). A message
    asked for again while queued or counting is counted once."""

    def __init__(self, engine: Engine, stopping: Callable[[], bool] = lambda: False) -> None:
        self._engine = engine
        # From a stop's first signal on, the work in progress gives up at its next step
        # (a 3,000,000-recipient build takes ~20 s: a stop must not wait for it).
        self._stopping = stopping
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="counting")
        self._asked: set[int] = set()
        self._lock = threading.Lock()

    def ask(self, message_pk: int) -> None:
        with self._lock:
            if message_pk in self._asked:
                return
            self._asked.add(message_pk)
        self._pool.submit(self._count, message_pk)

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

    def _pause(self) -> None:
        if self._stopping():
            raise _Stopped

    def _count(self, message_pk: int) -> None:
        try:
            upkeep.refresh_stats(self._engine, message_pk, self._pause)
            with self._engine.connect() as conn:
                message = messages.by_pk(conn, message_pk)
                conn.rollback()
            if timeline(message) is None:
                read_timeline(self._engine, message)
            upkeep.keep_up(self._engine, message_pk, self._pause)
        except _Stopped:
            log.info("counting message %d: stopped with the process", message_pk)
        except Exception:
            log.exception("counting message %d for its page failed", message_pk)
        finally:
            with self._lock:
                self._asked.discard(message_pk)
