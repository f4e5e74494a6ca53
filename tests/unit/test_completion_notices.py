"""msgtrail.notify.export_webhooks: a job's end becomes a signed notice to the app's
URL, retried after a doubling delay until a receiver takes it or the give-up time
passes; time moved by hand, a real receiver on loopback."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import select

from msgtrail import apps
from msgtrail.client import verify_webhook
from msgtrail.db.schema import webhook_deliveries
from msgtrail.export import jobs
from msgtrail.notify import export_webhooks
from msgtrail.testing.clock import ManualClock
from msgtrail.vault import Vault
from tests.helpers import Receiver
from tests.unit.conftest import Store


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver([200])
    yield r
    r.server.shutdown()


def _ended_job(store: Store, url: str) -> tuple[str, Vault]:
    """A job that just became ready, for an app whose webhook is `url`; the secret."""
    store.settings.webhook_allow_private = True
    store.settings.webhook_retry_seconds = 10
    store.settings.webhook_give_up_seconds = 100
    vault = Vault(store.settings)
    with store.engine.begin() as conn:
        _, secret = apps.set_webhook(conn, vault, store.app.app_id, url, rotate=False)
        jobs.request(conn, "export", store.app, store.message, {"events": []}, None,
                     lambda key: key)
    job = jobs.claim(store.engine, "w", 30)
    assert job is not None and secret is not None
    assert jobs.finish(store.engine, job, "w", {"rows": 0, "bytes": 0}, 3600,
                       ended=export_webhooks.on_end(store.settings))
    return secret, vault


def _deliver(store: Store, vault: Vault) -> bool:
    return export_webhooks.deliver_next(store.engine, vault, "w", store.settings)


def _state(store: Store) -> str:
    with store.engine.connect() as conn:
        return str(conn.execute(select(webhook_deliveries.c.state)).scalar_one())


def test_the_notice_is_signed_and_delivered_once(store: Store, receiver: Receiver,
                                                 clock: ManualClock) -> None:
    secret, vault = _ended_job(store, receiver.url)
    assert _deliver(store, vault) and _state(store) == "delivered"
    assert not _deliver(store, vault)
    [(headers, body)] = receiver.requests
    event = verify_webhook(secret, body, headers["Msgtrail-Signature"], now=clock.at)
    assert event["type"] == "export.ready" and event["data"]["state"] == "ready"


def test_failures_are_retried_after_doubling_delays_then_given_up(
        store: Store, receiver: Receiver, clock: ManualClock) -> None:
    receiver.statuses = [500]
    _, vault = _ended_job(store, receiver.url)
    waits = []
    while _deliver(store, vault):
        with store.engine.connect() as conn:
            next_at = conn.execute(select(webhook_deliveries.c.next_at)).scalar_one()
        if _state(store) == "failed":
            break
        assert not _deliver(store, vault)  # not due before its time
        waits.append(next_at - clock.at)
        clock.advance(next_at - clock.at)
    assert waits == [10, 20, 40]  # the next, 80 s later, would pass the give-up time
    assert _state(store) == "failed" and len(receiver.requests) == 4


def test_a_receiver_that_recovers_gets_the_notice(store: Store, receiver: Receiver,
                                                  clock: ManualClock) -> None:
    receiver.statuses = [503, 200]
    _, vault = _ended_job(store, receiver.url)
    assert _deliver(store, vault) and _state(store) == "pending"
    clock.advance(10)
    assert _deliver(store, vault) and _state(store) == "delivered"


def test_no_notice_without_a_url(store: Store) -> None:
    with store.engine.begin() as conn:
        job = jobs.request(conn, "export", store.app, store.message, {"events": []}, None,
                           lambda key: key)
    claimed = jobs.claim(store.engine, "w", 30)
    assert claimed is not None and claimed.id == job.id
    jobs.finish(store.engine, claimed, "w", {"rows": 0, "bytes": 0}, 3600,
                ended=export_webhooks.on_end(store.settings))
    with store.engine.connect() as conn:
        assert conn.execute(select(webhook_deliveries)).first() is None
