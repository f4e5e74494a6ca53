"""msgtrail.store.upkeep: a message's upkeep (compaction, pages, counters) waits for
its events to pause, or runs anyway once they waited too long; time moved by hand."""

from __future__ import annotations

import json
from typing import Any

import pytest
from sqlalchemy import select

from msgtrail.db.schema import activity_segments, messages
from msgtrail.store import upkeep
from msgtrail.testing.clock import ManualClock
from tests.unit.conftest import Store, sent

QUIET, LAG = 2.0, 60.0


def _row(store: Store):  # type: ignore[no-untyped-def]
    with store.engine.connect() as conn:
        return conn.execute(select(messages).where(messages.c.id == store.message.pk)).one()


def test_upkeep_waits_for_the_events_to_pause(store: Store, clock: ManualClock) -> None:
    store.append([sent(), sent()], int(clock.at))
    assert not upkeep.compact_next(store.engine, clock.at + QUIET - 1, QUIET, LAG)
    assert _row(store).pages_upto is None
    assert upkeep.compact_next(store.engine, clock.at + QUIET, QUIET, LAG)
    row = _row(store)
    assert row.pages_upto == row.next_batch and row.pending_since is None
    assert json.loads(row.stats)["totals"]["sent"] == 2
    # Nothing more to do until events come again.
    assert not upkeep.compact_next(store.engine, clock.at + 3600, QUIET, LAG)


def test_upkeep_runs_anyway_once_events_waited_too_long(store: Store,
                                                         clock: ManualClock) -> None:
    first = int(clock.at)
    store.append([sent()], first)
    for seconds in range(1, int(LAG) + 1):  # events keep coming, never pausing
        store.append([sent()], first + seconds)
        due = upkeep.compact_next(store.engine, first + seconds, QUIET, LAG)
        assert due == (seconds >= LAG), seconds
    assert json.loads(_row(store).stats)["totals"]["sent"] == int(LAG) + 1


def test_events_that_came_during_an_upkeep_wait_again_from_its_end(
        store: Store, clock: ManualClock, monkeypatch: pytest.MonkeyPatch) -> None:
    """An upkeep due by max_lag, of a message whose events keep coming: those that
    came while it counted leave the counters pending, and they wait from the upkeep's
    end. The next upkeep comes max_lag later, not back to back for as long as the
    send lasts."""
    first = int(clock.at)
    store.append([sent()], first)
    store_counts = upkeep.store_counts

    def counted_while_more_came(*args: Any, **kwargs: Any) -> None:
        store.append([sent()], int(clock.at))
        store_counts(*args, **kwargs)

    monkeypatch.setattr(upkeep, "store_counts", counted_while_more_came)
    clock.at = ended = first + LAG
    assert upkeep.compact_next(store.engine, clock.at, QUIET, LAG)
    monkeypatch.undo()
    assert _row(store).pending_since == ended
    for seconds in range(1, int(LAG) + 1):  # events keep coming, never pausing
        store.append([sent()], ended + seconds)
        clock.at = ended + seconds
        due = upkeep.compact_next(store.engine, clock.at, QUIET, LAG)
        assert due == (seconds >= LAG), seconds


def test_many_small_segments_are_merged(store: Store, clock: ManualClock) -> None:
    for _ in range(upkeep.COMPACT_SEGMENTS):
        store.append([sent()], int(clock.at))
    with store.engine.connect() as conn:
        before = conn.execute(select(activity_segments.c.id)).all()
    assert upkeep.compact_next(store.engine, clock.at + QUIET, QUIET, LAG)
    with store.engine.connect() as conn:
        after = conn.execute(select(activity_segments.c.events)).scalars().all()
    assert len(before) == upkeep.COMPACT_SEGMENTS and len(after) < len(before)
    assert sum(after) == upkeep.COMPACT_SEGMENTS


def test_counters_follow_the_events(store: Store, clock: ManualClock) -> None:
    sub = "5b7e2b1c-0000-4000-8000-000000000001"
    store.append([sent(sub)], int(clock.at))
    upkeep.refresh_stats(store.engine, store.message.pk)
    assert json.loads(_row(store).stats)["totals"]["clicked"] == 0
    store.append([sent(sub, event="clicked")], int(clock.at))
    assert _row(store).pending_since is not None
    upkeep.refresh_stats(store.engine, store.message.pk)
    row = _row(store)
    assert json.loads(row.stats)["totals"]["clicked"] == 1 and row.pending_since is None


def test_a_message_kept_up_by_one_thread_is_left_to_it_by_another(
        store: Store, clock: ManualClock, monkeypatch: pytest.MonkeyPatch) -> None:
    """The upkeep and a page's counting thread never merge and build one message at
    once: the second returns at once, neither waiting nor doing the work again."""
    import threading

    from msgtrail.store import pages

    store.append([sent(), sent()], int(clock.at))
    building, release = threading.Event(), threading.Event()
    builds: list[int] = []
    real = pages.build_pages

    def slow_build(*args: Any, **kwargs: Any) -> bool:
        builds.append(1)
        building.set()
        release.wait(30)
        return real(*args, **kwargs)

    monkeypatch.setattr(pages, "build_pages", slow_build)
    first: list[bool] = []
    keeper = threading.Thread(target=lambda: first.append(
        upkeep.keep_up(store.engine, store.message.pk)))
    keeper.start()
    assert building.wait(30)
    assert upkeep.keep_up(store.engine, store.message.pk) is False  # left to the first
    release.set()
    keeper.join(30)
    assert first == [True] and builds == [1]
    assert json.loads(_row(store).stats)["totals"]["sent"] == 2
    assert upkeep.keep_up(store.engine, store.message.pk) is True  # free again


def test_the_upkeep_waits_while_another_thread_keeps_its_message_up(
        store: Store, clock: ManualClock) -> None:
    """A worker whose due message is being kept up elsewhere in the process reports
    nothing done (it waits its poll interval instead of spinning on it)."""
    store.append([sent()], int(clock.at))
    key = (id(store.engine), store.message.pk)
    upkeep._keeping.add(key)
    try:
        assert not upkeep.compact_next(store.engine, clock.at + QUIET, QUIET, LAG)
    finally:
        upkeep._keeping.discard(key)
    assert upkeep.compact_next(store.engine, clock.at + QUIET, QUIET, LAG)


def test_a_page_count_gives_up_when_the_process_stops(store: Store, clock: ManualClock) -> None:
    """The counting thread of a page checks the stop between steps: a stopping process
    stores nothing of a count in progress; another process counts it whole."""
    from msgtrail.store import kept

    store.append([sent(), sent()], int(clock.at))
    kept.Counting(store.engine, stopping=lambda: True)._count(store.message.pk)
    assert _row(store).stats is None and _row(store).pages_upto is None
    kept.Counting(store.engine)._count(store.message.pk)
    row = _row(store)
    assert json.loads(row.stats)["totals"]["sent"] == 2 and row.pages_upto == row.next_batch
