"""Background upkeep of a message's activity, once its events pause: merge its small
segments (`activity.compact`), bring its recipient pages up to date
(`pages.build_pages`) and recompute its counters from them. Workers run it
between jobs."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterable
from typing import Any

from sqlalchemy import Connection, Engine, select, update

from msgtrail import clock
from msgtrail.channels import EVENTS, platform_key
from msgtrail.db import statements as sql
from msgtrail.db.schema import messages
from msgtrail.store import activity, counters, pages
from msgtrail.store.coalesced import Coalesced

# A message with this many small segments, or any of no part, has them merged (once
# its events paused: settings.upkeep_quiet_seconds).
COMPACT_SEGMENTS = 64


# Called between the steps of upkeep (a merge, a range of pages), when it holds
# nothing of the step before: the worker runs queued exports there, so that an export
# never waits behind the upkeep of a big message (docs/internals/exports.md).
Pause = Callable[[], None]


def _no_pause() -> None:
    return None


def compact_next(engine: Engine, now: float, quiet: float, max_lag: float,
                 pause: Pause = _no_pause) -> bool:
    """Keep up the message whose events have waited longest (`keep_up`), once they
    have paused `quiet` seconds or waited `max_lag`; False when nothing is due (or
    another thread is keeping it up)."""
    with engine.connect() as conn:
        message_pk = conn.execute(sql.UPKEEP_DUE,
                                  {"quiet": now - quiet, "lag": now - max_lag}).scalar()
        conn.rollback()
    if message_pk is None:
        return False
    if not keep_up(engine, message_pk, pause):
        # Another thread keeps it up: nothing to do here until it is done (retrying at
        # once would spin on it and slow that thread down).
        return False
    # Events that came meanwhile wait again from now: a message whose events never
    # pause is kept up every max_lag, not rebuilt back to back while it is sent (that
    # took a core from ingestion for as long as the send lasted).
    with engine.begin() as conn:
        conn.execute(sql.UPKEEP_WAIT_AGAIN, {"pk": message_pk, "at": int(clock.now())})
    return True


# Messages being kept up by a thread of this process (the upkeep, or the counting
# thread of a page that found one never counted): another keeper leaves them to it,
# instead of merging and building them a second time or waiting (a worker that waited
# would hold its exports back).
_keeping: set[tuple[int, int]] = set()
_keeping_lock = threading.Lock()


def keep_up(engine: Engine, message_pk: int, pause: Pause = _no_pause) -> bool:
    """Merge the message's small segments if there are many, store its recipients'
    pages and refresh its counters from them, calling `pause` between steps; False,
    doing nothing, while another thread of this process keeps it up."""
    key = (id(engine), message_pk)
    with _keeping_lock:
        if key in _keeping:
            return False
        _keeping.add(key)
    try:
        _keep_up(engine, message_pk, pause)
    finally:
        with _keeping_lock:
            _keeping.discard(key)
    return True


def _keep_up(engine: Engine, message_pk: int, pause: Pause) -> None:
    with engine.connect() as conn:
        small, unparted = conn.execute(sql.SMALL_SEGMENTS, {
            "pk": message_pk, "small": activity.SMALL_SEGMENT}).one()
        conn.rollback()
    # Small segments of no part (webhook groups) make every fresh read split the
    # message's segments into files: they are stored by part at the first pause.
    if small >= COMPACT_SEGMENTS or unparted > 0:
        activity.compact(engine, message_pk, pause)
        pause()
    # Pages first: the counters are then read from them, not pivoted a second time
    # (half the time and less than half the memory: docs/benchmarks.md).
    pages.build_pages(engine, message_pk, pause)
    # The count pauses too: events that came during the build are newer than its
    # pages, and past pages.MERGE_EVENTS of them it pivots every event again (at
    # 100,000 events/s, a 3,000,000-recipient message's count held an export 6.6 s).
    refresh_stats(engine, message_pk, pause)


# Readers of one message's counters while its events flow (the API, the dashboard, a
# client polling) share recounts: each recount pivots every recipient.
_recounts = Coalesced()


def refresh_stats(engine: Engine, message_pk: int, pause: Pause = _no_pause) -> None:
    """Recompute a message's delivery counters if events arrived since they were
    last computed; they then reflect every event committed before this call. Callers
    at the same time share a recount that started after they called (`Coalesced`):
    one running and one more, however many they are. The recount calls `pause` of
    the caller that started it after each page or range it counts."""
    _recounts.run((id(engine), message_pk), lambda: _refresh(engine, message_pk, pause))


def _refresh(engine: Engine, message_pk: int, pause: Pause = _no_pause) -> None:
    with engine.connect() as conn:
        seen = conn.execute(select(messages.c.next_batch).where(
            messages.c.id == message_pk, messages.c.pending_since.is_not(None))).scalar()
        channel = conn.execute(select(messages.c.target_channel).where(
            messages.c.id == message_pk)).scalar()
        conn.rollback()
    if seen is None:
        return
    with activity.snapshot(engine) as raw:
        counts, timeline, first = counters.counts_and_timeline(raw, message_pk, str(channel),
                                                               pause)
    store_counts(engine, message_pk, str(channel), counts, seen, timeline=timeline,
                 first=first)


def keep_timeline(engine: Engine, message_pk: int, seen: int,
                  timeline: counters.Timeline) -> None:
    """Keep a timeline read by a snapshot that saw `seen` batches beside the message's
    counters, if they are current and of that snapshot still."""
    with engine.begin() as conn:
        stats = conn.execute(sql.CURRENT_STATS, {"pk": message_pk, "seen": seen}).scalar()
        if stats is None:
            return
        doc = json.loads(stats)
        doc["timeline"] = {"bucket": timeline[0], "rows": timeline[1]}
        conn.execute(sql.KEEP_STATS, {"pk": message_pk, "seen": seen,
                                      "stats": json.dumps(doc)})


def store_counts(engine: Engine, message_pk: int, channel: str,
                 counts: Iterable[tuple[Any, ...]], seen: int, only_current: bool = False,
                 timeline: counters.Timeline | None = None,
                 first: list[dict[str, Any]] | None = None) -> None:
    """Store counters (`counters.counts`) read by a snapshot that saw `seen` batches
    of the message. They stop being pending only if no batch came since; with
    `only_current`, they are not stored otherwise either (an export's tally must not
    replace counters a later read stored), nor if they are not pending."""
    with engine.begin() as conn:
        conn.execute(sql.STORE_CURRENT_COUNTS if only_current else sql.STORE_COUNTS,
                     {"stats": json.dumps(_stats(counts, channel, timeline, first)),
                      "pk": message_pk,
                      "seen": seen})


def forget_recipients(conn: Connection, message_pk: int) -> None:
    """Keep only counts in the message's counters: the first recipients they hold for
    the report go when its activity is purged."""
    stats = conn.execute(select(messages.c.stats).where(messages.c.id == message_pk)).scalar()
    if stats is None:
        return
    doc = json.loads(stats)
    if doc.pop("first", None) is not None:
        conn.execute(update(messages).where(messages.c.id == message_pk).values(
            stats=json.dumps(doc)))


def _stats(counts: Iterable[tuple[Any, ...]], channel: str,
           timeline: counters.Timeline | None = None,
           first: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """Totals and per-platform counters from (device_type, recipients, failed,
    *per-event counts) rows: `failures` counts the recipients with any failure event
    (a bounce or a rejection alone is a failure too), `failed` those with the event
    named so."""
    totals = {"recipients": 0, "failures": 0, **{e: 0 for e in EVENTS}}
    platforms: dict[str, dict[str, int]] = {}
    for device_type, n, n_failed, *per_event in counts:
        part = {"recipients": int(n), "failures": int(n_failed),
                **{e: int(v) for e, v in zip(EVENTS, per_event, strict=True)}}
        slot = platforms.setdefault(platform_key(device_type, channel or "push"),
                                    {k: 0 for k in part})
        for key, value in part.items():
            totals[key] += value
            slot[key] += value
    stats: dict[str, Any] = {"totals": totals, "platforms": platforms}
    if timeline is not None:
        # The report's chart, kept with the counters it agrees with.
        stats["timeline"] = {"bucket": timeline[0], "rows": timeline[1]}
    if first is not None:
        # The first recipients, for a report to list before the message has pages.
        stats["first"] = first
    return stats
