"""msgtrail.export.jobs: one job per account at a time, leases taken over once they
expire, attempts counted, files published with their expiry; time moved by hand."""

from __future__ import annotations

import pytest

from msgtrail import apps, messages
from msgtrail.errors import RateLimited
from msgtrail.export import jobs
from msgtrail.testing.clock import ManualClock
from tests.unit.conftest import Store

LEASE = 30.0


def _request(store: Store, events: list[str] | None = None) -> jobs.Job:
    with store.engine.begin() as conn:
        return jobs.request(conn, "export", store.app, store.message,
                            {"events": events or []}, None, lambda key: f"/exports/{key}")


def test_one_job_per_account_and_the_same_request_gets_the_same_job(store: Store) -> None:
    first = _request(store)
    assert first.state == "queued" and first.url == f"/exports/{first.file_key}"
    assert _request(store).export_id == first.export_id
    with pytest.raises(RateLimited) as refused:
        _request(store, ["clicked"])
    assert int(refused.value.headers["Retry-After"]) >= 1


def test_a_lease_is_taken_over_only_once_it_expired(store: Store, clock: ManualClock) -> None:
    job = _request(store)
    mine = jobs.claim(store.engine, "a", LEASE)
    assert mine is not None and mine.id == job.id and mine.attempts == 1
    clock.advance(LEASE - 1)
    assert jobs.claim(store.engine, "b", LEASE) is None
    assert jobs.heartbeat(store.engine, mine, "a", LEASE, 10, None)  # renewed: 30 s more
    clock.advance(LEASE - 1)
    assert jobs.claim(store.engine, "b", LEASE) is None
    clock.advance(2)
    theirs = jobs.claim(store.engine, "b", LEASE)
    assert theirs is not None and theirs.id == job.id and theirs.attempts == 2
    # The first holder learns it lost the job, and cannot finish it.
    assert not jobs.heartbeat(store.engine, mine, "a", LEASE, 20, None)
    assert not jobs.finish(store.engine, mine, "a", {"rows": 1, "bytes": 1}, 60)


def test_failures_requeue_until_the_attempts_are_spent(store: Store) -> None:
    job = _request(store)
    for attempt in (1, 2, 3):
        claimed = jobs.claim(store.engine, "w", LEASE)
        assert claimed is not None and claimed.attempts == attempt
        jobs.fail(store.engine, claimed, "w", f"boom {attempt}", max_attempts=3)
    with store.engine.connect() as conn:
        failed = jobs.get(conn, job.id)
    assert failed.state == "failed" and failed.error == "boom 3"
    assert jobs.claim(store.engine, "w", LEASE) is None
    _request(store, ["clicked"])  # the account is free again


def test_a_finished_job_carries_its_manifest_and_expiry(store: Store, clock: ManualClock) -> None:
    _request(store)
    job = jobs.claim(store.engine, "w", LEASE)
    assert job is not None
    assert jobs.finish(store.engine, job, "w", {"rows": 5, "bytes": 99}, ttl=3600)
    with store.engine.connect() as conn:
        ready = jobs.get(conn, job.id)
    assert (ready.state, ready.rows_written, ready.bytes) == ("ready", 5, 99)
    assert ready.expires_at == clock.at + 3600
    assert jobs.status(ready)["state"] == "ready"
    clock.advance(3601)
    assert jobs.status(ready)["state"] == "expired"


def test_a_stopping_worker_hands_its_job_back_without_spending_an_attempt(
        store: Store) -> None:
    _request(store)
    job = jobs.claim(store.engine, "w", LEASE)
    assert job is not None
    jobs.release(store.engine, job, "w")
    again = jobs.claim(store.engine, "v", LEASE)
    assert again is not None and again.attempts == 1


def test_a_failed_email_is_retried_after_a_doubling_delay(store: Store,
                                                         clock: ManualClock) -> None:
    with store.engine.begin() as conn:
        job = jobs.request(conn, "history", store.app, store.message, {"events": "sent"},
                           None, lambda key: key, email="ops@example.com")
    claimed = jobs.claim(store.engine, "w", LEASE)
    assert claimed is not None and jobs.finish(store.engine, claimed, "w",
                                               {"rows": 0, "bytes": 0}, ttl=86_400)
    delays = []
    for _ in range(2):
        sending = jobs.claim_email(store.engine, "w", LEASE)
        assert sending is not None and sending.id == job.id
        assert jobs.email_sent(store.engine, sending, "w", "refused", 3, 10) == "pending"
        assert jobs.claim_email(store.engine, "w", LEASE) is None  # not due yet
        with store.engine.connect() as conn:
            due = jobs.get(conn, job.id).email_next_at
        assert due is not None
        delays.append(due - clock.at)
        clock.advance(delays[-1])
    assert delays == [10, 20]
    last = jobs.claim_email(store.engine, "w", LEASE)
    assert last is not None
    assert jobs.email_sent(store.engine, last, "w", "refused", 3, 10) == "failed"


def test_one_accounts_exports_hold_back_anothers_for_one_job_at_most(
        store: Store, clock: ManualClock) -> None:
    """Fair queueing across accounts: one active job per account and the oldest queued
    first, so however often account A asks, B's export waits behind one of A's."""
    with store.engine.begin() as conn:
        other, _ = apps.create_app(conn, "other", account="other")
        their_message = messages.create(conn, other, {"name": "m", "target_channel": "push"})

    def theirs() -> jobs.Job:
        with store.engine.begin() as conn:
            return jobs.request(conn, "export", other, their_message, {"events": []}, None,
                                lambda key: key)

    big = _request(store)  # A's big export
    assert jobs.claim(store.engine, "w", LEASE).id == big.id  # type: ignore[union-attr]
    clock.advance(1)
    small = theirs()  # B asks while A's runs
    with pytest.raises(RateLimited):  # A cannot queue another meanwhile
        _request(store, ["clicked"])
    claimed = jobs.claim(store.engine, "w", LEASE)
    assert claimed is not None and claimed.id == small.id  # a second worker takes B's
    assert jobs.finish(store.engine, claimed, "w", {"rows": 1, "bytes": 1}, 60)
    # A's next export, asked the moment its first is done, queues behind B's next.
    clock.advance(1)
    second_small = theirs()
    clock.advance(1)
    assert jobs.finish(store.engine, big, "w", {"rows": 1, "bytes": 1}, 60)
    second_big = _request(store, ["clicked"])
    assert [jobs.claim(store.engine, "w", LEASE).id for _ in range(2)] == [  # type: ignore[union-attr]
        second_small.id, second_big.id]
