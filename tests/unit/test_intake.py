"""msgtrail.ingest.intake: provider events attributed to a message and recipient, the
rest kept with why; concurrent deliveries joined into group commits, none lost."""

from __future__ import annotations

import json
import uuid
from concurrent.futures import ThreadPoolExecutor

from sqlalchemy import event, func, select

from msgtrail.db.schema import messages
from msgtrail.ingest import intake
from msgtrail.ingest.connectors.base import Incoming
from msgtrail.ingest.intake import Delivery, GroupCommit
from msgtrail.store import upkeep
from tests.unit.conftest import Store

NOW = 1_800_000_000


def _incoming(store: Store, message_id: str | None = None, **fields: object) -> Incoming:
    values: dict[str, object] = {
        "raw": {"n": str(uuid.uuid4())}, "event": "delivered",
        "message_id": message_id or store.message.message_id,
        "subscription_id": str(uuid.uuid4()), "ts": NOW, **fields}
    return Incoming(**values)  # type: ignore[arg-type]


def _totals(store: Store) -> dict[str, int]:
    upkeep.refresh_stats(store.engine, store.message.pk)
    with store.engine.connect() as conn:
        stats = conn.execute(select(messages.c.stats).where(
            messages.c.id == store.message.pk)).scalar_one()
    return dict(json.loads(stats)["totals"])


def test_events_are_recorded_and_the_unattributable_kept_with_why(store: Store) -> None:
    unknown = str(uuid.uuid4())
    [outcome] = intake.record(store.engine, [Delivery(store.app, "sendgrid", [
        _incoming(store), _incoming(store, unknown),
        _incoming(store, problem="no msgtrail_message_id in the metadata")], NOW)])
    assert (outcome.accepted, outcome.rejected) == (1, 2)
    assert _totals(store)["delivered"] == 1
    page = intake.rejections(store.engine, store.app.pk, "sendgrid", 10, 0)
    reasons = {r["reason"] for r in page["rejections"]}
    assert reasons == {"no msgtrail_message_id in the metadata",
                       f"no message {unknown} in this app"}


def test_a_retried_rejection_is_kept_once(store: Store) -> None:
    same = _incoming(store, problem="no ids")
    for _ in range(2):
        intake.record(store.engine, [Delivery(store.app, "postmark", [same], NOW)])
    assert intake.rejections(store.engine, store.app.pk, None, 10, 0)["total_count"] == 1


def test_concurrent_deliveries_share_commits_and_none_is_lost(store: Store) -> None:
    commits = []
    event.listen(store.engine, "commit", lambda _conn: commits.append(1))
    group = GroupCommit(store.engine)
    try:
        with ThreadPoolExecutor(32) as pool:
            futures = [pool.submit(lambda: group.submit(Delivery(
                store.app, "sendgrid", [_incoming(store)], NOW)).result(timeout=30))
                for _ in range(200)]
            outcomes = [f.result() for f in futures]
    finally:
        group.close()
    assert all((o.accepted, o.rejected) == (1, 0) for o in outcomes)
    assert _totals(store)["delivered"] == 200
    assert len(commits) < 200  # requests in flight joined one commit


def test_one_bad_delivery_fails_alone(store: Store) -> None:
    group = GroupCommit(store.engine)
    other_app = store.app.__class__(**{**store.app.__dict__, "pk": 10_000})
    try:
        good = [group.submit(Delivery(store.app, "sendgrid", [_incoming(store)], NOW))
                for _ in range(5)]
        bad = group.submit(Delivery(other_app, "sendgrid", [_incoming(store, problem="x")],
                                    NOW))
        assert all(f.result(timeout=30).accepted == 1 for f in good)
        error = bad.exception(timeout=30)
    finally:
        group.close()
    assert error is not None  # no such app: its rejection cannot be stored
    with store.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(messages)).scalar_one() == 1
    assert _totals(store)["delivered"] == 5
