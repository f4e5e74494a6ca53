"""msgtrail.runtime.worker: one unit of work at a time, in order (a job, an email, the
upkeep that is due); a job that fails is recorded and tried again, the worker goes on."""

from __future__ import annotations

import csv
import gzip
import io
import json

import pytest
from sqlalchemy import select

from msgtrail.db.schema import messages
from msgtrail.export import jobs
from msgtrail.files import MemoryStore
from msgtrail.runtime.worker import Worker
from msgtrail.store import activity, counters, pages, upkeep
from msgtrail.testing.clock import ManualClock
from tests.unit.conftest import Store, sent


def _queue(store: Store) -> jobs.Job:
    with store.engine.begin() as conn:
        return jobs.request(conn, "export", store.app, store.message, {"events": []}, None,
                            lambda key: key)


def _job(store: Store, job: jobs.Job) -> jobs.Job:
    with store.engine.connect() as conn:
        return jobs.get(conn, job.id)


def test_a_queued_export_is_written_and_published(store: Store, clock: ManualClock) -> None:
    store.append([sent(), sent(), sent()], int(clock.at))
    files = MemoryStore()
    worker = Worker(store.settings, store.engine, files)
    job = _queue(store)
    assert worker.run_once()
    done = _job(store, job)
    assert done.state == "ready" and done.rows_written == 3
    rows = list(csv.DictReader(io.StringIO(gzip.decompress(files.files[job.file_key]).decode())))
    assert len(rows) == 3 and all(r["sent"] for r in rows)


def test_a_failing_job_is_recorded_and_the_worker_goes_on(store: Store,
                                                          clock: ManualClock) -> None:
    files = MemoryStore()
    files.broken = True
    worker = Worker(store.settings, store.engine, files)
    job = _queue(store)
    assert worker.run_once()
    failed = _job(store, job)
    assert failed.state == "queued" and failed.attempts == 1
    assert failed.error == "OSError: memory store is broken"
    files.broken = False
    assert worker.run_once()
    assert _job(store, job).state == "ready" and job.file_key in files.files


def test_upkeep_runs_when_no_job_waits_and_its_quiet_period_passed(
        store: Store, clock: ManualClock) -> None:
    worker = Worker(store.settings, store.engine, MemoryStore())
    worker.run_once()  # the first retention pass, due at once
    assert not worker.run_once()
    store.append([sent()], int(clock.at))
    assert not worker.run_once()  # events just came: not yet
    clock.advance(store.settings.upkeep_quiet_seconds)
    assert worker.run_once()
    assert not worker.run_once()


def test_an_export_queued_during_upkeep_runs_before_the_upkeep_ends(
        store: Store, clock: ManualClock, monkeypatch: pytest.MonkeyPatch) -> None:
    """The upkeep of a big message takes seconds per million recipients: an export
    queued meanwhile runs at the upkeep's next step (here, after its first page), not
    after it, and the upkeep then finishes what it began."""
    monkeypatch.setattr(pages, "PAGE_ROWS", 10)
    store.append([sent() for _ in range(95)], int(clock.at))
    clock.advance(store.settings.upkeep_quiet_seconds)
    files = MemoryStore()
    worker = Worker(store.settings, store.engine, files)
    states: list[str] = []
    queued: list[jobs.Job] = []

    def pause() -> None:
        if not queued:  # a request arrives while the first page is being built
            queued.append(_queue(store))
        worker.run_waiting_jobs()
        states.append(_job(store, queued[0]).state)

    assert upkeep.compact_next(store.engine, clock.at, store.settings.upkeep_quiet_seconds,
                               store.settings.upkeep_max_lag_seconds, pause)
    assert states[0] == "ready" and len(states) == 10  # a pause after each of 10 pages
    rows = gzip.decompress(files.files[queued[0].file_key]).count(b"\n") - 1
    assert rows == 95
    with activity.snapshot(store.engine) as raw:  # the upkeep finished: pages current
        assert pages.current_pages(raw, store.message.pk) is not None


def test_an_export_queued_during_the_count_runs_before_the_count_ends(
        store: Store, clock: ManualClock, monkeypatch: pytest.MonkeyPatch) -> None:
    """After the pages, the upkeep counts the message's recipients page by page (or,
    with many events newer than the pages, pivots them all again): it pauses after
    each page too, so an export queued meanwhile waits for one page, not the count."""
    monkeypatch.setattr(pages, "PAGE_ROWS", 10)
    store.append([sent() for _ in range(95)], int(clock.at))
    clock.advance(store.settings.upkeep_quiet_seconds)
    worker = Worker(store.settings, store.engine, MemoryStore())
    queued: list[jobs.Job] = []
    seen: list[str] = []
    count_page = counters.counted

    def counted(table, channel):  # type: ignore[no-untyped-def]
        if not queued:  # a request arrives while the first page is being counted
            queued.append(_queue(store))
        seen.append(_job(store, queued[0]).state)
        return count_page(table, channel)

    monkeypatch.setattr(counters, "counted", counted)
    assert upkeep.compact_next(store.engine, clock.at, store.settings.upkeep_quiet_seconds,
                               store.settings.upkeep_max_lag_seconds, worker.run_waiting_jobs)
    assert len(seen) == 10 and seen[0] == "queued" and set(seen[1:]) == {"ready"}
    with store.engine.connect() as conn:
        stats = conn.execute(select(messages.c.stats).where(
            messages.c.id == store.message.pk)).scalar_one()
    assert json.loads(stats)["totals"]["sent"] == 95  # and the count was finished
