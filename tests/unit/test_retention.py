"""msgtrail.runtime.retention: one purger at a time; expired files marked before their
bytes go; activity and rejections past the window deleted; time moved by hand."""

from __future__ import annotations

import json

import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import func, select

from msgtrail.db.schema import activity_segments, messages, webhook_rejections
from msgtrail.export import jobs
from msgtrail.files import MemoryStore
from msgtrail.ingest import intake
from msgtrail.ingest.connectors.base import Incoming
from msgtrail.ingest.intake import Delivery
from msgtrail.runtime import metrics, retention
from msgtrail.testing.clock import ManualClock
from tests.unit.conftest import Store, sent

DAY = 86_400


def _count(store: Store, table) -> int:  # type: ignore[no-untyped-def]
    with store.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(table)).scalar_one())


def test_one_worker_takes_each_turn(store: Store, clock: ManualClock) -> None:
    assert retention.take_turn(store.engine, 60)
    assert not retention.take_turn(store.engine, 60)
    clock.advance(59)
    assert not retention.take_turn(store.engine, 60)
    clock.advance(1)
    assert retention.take_turn(store.engine, 60)


def test_an_expired_file_is_marked_then_deleted(store: Store, clock: ManualClock) -> None:
    files = MemoryStore()
    with store.engine.begin() as conn:
        jobs.request(conn, "export", store.app, store.message, {"events": []}, None,
                     lambda key: key)
    job = jobs.claim(store.engine, "w", 30)
    assert job is not None
    with files.writer(job.file_key) as out:
        out.write(b"rows")
    jobs.finish(store.engine, job, "w", {"rows": 1, "bytes": 4}, ttl=3 * DAY)
    clock.advance(3 * DAY - 1)
    assert retention.purge(store.engine, files, store.settings)["files"] == 0
    assert files.served(job.file_key, 60) is not None
    clock.advance(1)
    ended: list[str] = []
    counts = retention.purge(store.engine, files, store.settings,
                             ended=lambda _conn, _job, how: ended.append(how))
    assert counts["files"] == 1 and ended == ["expired"]
    assert files.served(job.file_key, 60) is None
    with store.engine.connect() as conn:
        assert jobs.get(conn, job.id).state == "expired"


def test_activity_and_rejections_past_the_window_are_deleted(store: Store,
                                                               clock: ManualClock) -> None:
    store.append([sent(), sent()], int(clock.at))
    intake.record(store.engine, [Delivery(store.app, "sendgrid", [
        Incoming(raw={"x": 1}, problem="no ids")], int(clock.at))])
    days = store.settings.activity_retention_days
    clock.advance(days * DAY - 1)
    assert retention.purge(store.engine, MemoryStore(), store.settings)["messages"] == 0
    assert _count(store, activity_segments) == 1 and _count(store, webhook_rejections) == 1
    clock.advance(2)
    counts = retention.purge(store.engine, MemoryStore(), store.settings)
    assert (counts["messages"], counts["rejections"]) == (1, 1)
    assert _count(store, activity_segments) == 0 and _count(store, webhook_rejections) == 0
    with store.engine.connect() as conn:
        purged_at, stats = conn.execute(select(messages.c.purged_at, messages.c.stats)
                                        .where(messages.c.id == store.message.pk)).one()
    assert purged_at == int(clock.at)
    assert stats is None or json.loads(stats)  # the message itself is kept


def test_a_purged_message_keeps_its_counters(store: Store, clock: ManualClock) -> None:
    """Counted at the purge if events came after they were last counted: the
    message's totals outlive its rows."""
    first, second = sent(), sent()
    store.append([first, second, sent(str(first["subscription_id"]), event="clicked")],
                 int(clock.at))
    clock.advance(store.settings.activity_retention_days * DAY + 1)
    assert retention.purge(store.engine, MemoryStore(), store.settings)["messages"] == 1
    assert _count(store, activity_segments) == 0
    with store.engine.connect() as conn:
        stats, pending = conn.execute(select(messages.c.stats, messages.c.pending_since)
                                      .where(messages.c.id == store.message.pk)).one()
    totals = json.loads(stats)["totals"]
    assert (totals["recipients"], totals["sent"], totals["clicked"]) == (2, 2, 1)
    assert pending is None
    # Counts only: the first recipients a recount keeps for the report go with the rest.
    assert "first" not in json.loads(stats)
    assert str(first["subscription_id"]) not in stats


def _overdue(store: Store) -> float:
    """msgtrail_retention_overdue_seconds as a scrape reads it."""
    body, _ = metrics.exposition(store.engine, store.settings.activity_retention_days)
    [family] = [f for f in text_string_to_metric_families(body.decode())
                if f.name == "msgtrail_retention_overdue_seconds"]
    return float(family.samples[0].value)


def test_the_overdue_gauge_shows_what_retention_has_yet_to_remove(store: Store,
                                                                   clock: ManualClock) -> None:
    files = MemoryStore()
    with store.engine.begin() as conn:
        jobs.request(conn, "export", store.app, store.message, {"events": []}, None,
                     lambda key: key)
    job = jobs.claim(store.engine, "w", 30)
    assert job is not None
    with files.writer(job.file_key) as out:
        out.write(b"rows")
    jobs.finish(store.engine, job, "w", {"rows": 1, "bytes": 4}, ttl=DAY)
    assert _overdue(store) == 0
    clock.advance(DAY + 100)  # the file's lifetime ended 100 s ago
    assert _overdue(store) == pytest.approx(100, abs=1)
    retention.purge(store.engine, files, store.settings)
    assert _overdue(store) == 0
    # The message's activity, created DAY + 100 s earlier, past its window by an hour
    # more than that, and not yet purged.
    clock.advance(store.settings.activity_retention_days * DAY + 3600)
    assert _overdue(store) == pytest.approx(DAY + 100 + 3600, abs=2)
    retention.purge(store.engine, files, store.settings)
    assert _overdue(store) == 0
