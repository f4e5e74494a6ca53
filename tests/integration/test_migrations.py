"""Upgrading a store that holds activity in the old layout (folded recipients and a
log not yet folded) keeps every event, on both configurations."""

from __future__ import annotations

import time
import uuid
from unittest import mock

import pyarrow as pa
import pyarrow.ipc as ipc
import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from msgtrail import apps, audit, messages
from msgtrail.db.engine import HEAD, make_engine, upgrade
from msgtrail.store import activity, counters, event_batch
from msgtrail.testing.backends import Embedded, Scale


def _old_app(conn, name: str) -> apps.App:  # type: ignore[no-untyped-def]
    """An app as `apps.create_app` makes one, without its audit record: the table
    came with 0013."""
    with mock.patch.object(audit, "record"):
        app, _ = apps.create_app(conn, name)
    return app

def test_folded_recipients_and_the_log_become_segments(tmp_path, backend: Embedded | Scale,
                                                       monkeypatch) -> None:  # type: ignore[no-untyped-def]
    env = backend.provision(tmp_path)
    url = env.get("MSGTRAIL_DATABASE_URL", f"sqlite:///{tmp_path / 'old.db'}")
    engine = make_engine(url)
    try:
        upgrade(engine, "0005")
        folded, logged = sorted(str(uuid.uuid4()) for _ in range(2))
        now = int(time.time()) - 600
        with engine.begin() as conn:
            app = _old_app(conn, "old")
            message = messages.create(conn, app, {"target_channel": "push"})
            day = message.created_at // 86_400
            if engine.dialect.name == "postgresql":
                conn.execute(text(f"CREATE TABLE recipients_d{day} PARTITION OF recipients"
                                  f" FOR VALUES FROM ({day}) TO ({day + 1})"))
            conn.execute(text(
                "INSERT INTO recipients (message_pk, subscription_id, msg_day, external_id,"
                " device_type, sent, delivered, line) VALUES (:pk, :s, :d, 'first', 'iOS',"
                " :t, :t2, 'x')"), {"pk": message.pk, "s": folded, "d": day, "t": now,
                                    "t2": now + 5})
            log = ("INSERT INTO activity_log (message_pk, batch, seq, subscription_id, event, ts,"
                   " external_id) VALUES (:pk, :b, :q, :s, :e, :t, :x)")
            conn.execute(text(log), [
                {"pk": message.pk, "b": 1, "q": 0, "s": folded, "e": 2, "t": now + 9, "x": "late"},
                {"pk": message.pk, "b": 1, "q": 1, "s": logged, "e": 0, "t": now, "x": None},
                {"pk": message.pk, "b": 2, "q": 0, "s": logged, "e": 0, "t": now - 1, "x": "l"}])
            conn.execute(text("UPDATE messages SET next_batch = 2 WHERE id = :pk"),
                         {"pk": message.pk})
        upgrade(engine)
        with activity.snapshot(engine) as raw:
            rows = counters.sample(raw, message.pk, "push", [], 10)
        assert [r["subscription_id"] for r in rows] == [folded, logged]
        assert rows[0] | {"subscription_id": None} == {
            "subscription_id": None, "onesignal_id": None, "external_id": "first",
            "device_type": "iOS", "failure_message": None, "sent": now, "delivered": now + 5,
            "clicked": now + 9, "failed": None, "unsubscribed": None}
        assert (rows[1]["sent"], rows[1]["external_id"]) == (now - 1, "l")
        with engine.begin() as conn:  # the next batch numbers on from the old ones
            activity.append(conn, message.pk, event_batch.columns(
                [(0, logged, 1, now + 1, None, "new", None, None)]), now)
        with activity.snapshot(engine) as raw:
            rows = counters.sample(raw, message.pk, "push", ["delivered"], 10)
        assert [(r["subscription_id"], r["external_id"]) for r in rows] == [
            (folded, "first"), (logged, "l")]
        # The old segments hold ids as strings; compaction rewrites them as 16 bytes
        # beside the new one, and nobody reads a difference.
        with engine.connect() as conn:
            stored = [ipc.open_stream(d).schema.field(0).type for d in conn.execute(text(
                "SELECT data FROM activity_segments WHERE message_pk = :pk"),
                {"pk": message.pk}).scalars()]
        assert pa.string() in stored and event_batch.KEY in stored
        assert activity.compact(engine, message.pk)
        with activity.snapshot(engine) as raw:
            assert counters.sample(raw, message.pk, "push", ["delivered"], 10) == rows
        with engine.connect() as conn:
            assert {ipc.open_stream(d).schema.field(0).type for d in conn.execute(text(
                "SELECT data FROM activity_segments WHERE message_pk = :pk"),
                {"pk": message.pk}).scalars()} == {event_batch.KEY}
    finally:
        engine.dispose()
        backend.release(env)


def test_postgresql_stores_blobs_as_they_are(tmp_path, backend: Embedded | Scale) -> None:  # type: ignore[no-untyped-def]
    """Segments are uncompressed on purpose and pages are LZ4 already: TOAST's pglz
    must not compress either again (storage EXTERNAL); SQLite has no such setting."""
    env = backend.provision(tmp_path)
    url = env.get("MSGTRAIL_DATABASE_URL", f"sqlite:///{tmp_path / 'new.db'}")
    engine = make_engine(url)
    try:
        upgrade(engine)
        with engine.connect() as conn:
            assert conn.execute(text("SELECT version_num FROM alembic_version")
                                ).scalar_one() == HEAD
            if engine.dialect.name != "postgresql":
                return
            storage = dict(conn.execute(text(
                "SELECT attrelid::regclass::text, attstorage FROM pg_attribute"
                " WHERE attname = 'data' AND attrelid IN"
                " ('activity_segments'::regclass, 'recipient_pages'::regclass)")).all())
        assert storage == {"activity_segments": "e", "recipient_pages": "e"}
    finally:
        engine.dispose()
        backend.release(env)


def test_message_ids_become_unique_per_app(tmp_path, backend: Embedded | Scale) -> None:  # type: ignore[no-untyped-def]
    """A store made before 0012 upgrades with its messages and their activity; after it,
    another app may hold the same message id, and one app still may not hold it twice."""
    env = backend.provision(tmp_path)
    url = env.get("MSGTRAIL_DATABASE_URL", f"sqlite:///{tmp_path / 'old.db'}")
    engine = make_engine(url)
    try:
        upgrade(engine, "0011")
        subscription = str(uuid.uuid4())
        with engine.begin() as conn:
            first = _old_app(conn, "first")
            second = _old_app(conn, "second")
            message = messages.create(conn, first, {"target_channel": "push"})
            activity.append(conn, message.pk, event_batch.columns(
                [(0, subscription, 0, 1_700_000_000, None, None, None, None)]), 1_700_000_000)
        upgrade(engine)
        with engine.begin() as conn:
            again = messages.create(conn, second, {"target_channel": "email"},
                                    message.message_id)
        with engine.connect() as conn:
            assert messages.find(conn, first, message.message_id).pk == message.pk
            assert messages.find(conn, second, message.message_id).pk == again.pk
        with activity.snapshot(engine) as raw:
            [row] = counters.sample(raw, message.pk, "push", [], 10)
        assert row["subscription_id"] == subscription
        with pytest.raises(IntegrityError), engine.begin() as conn:
            messages.create(conn, first, {"target_channel": "push"}, message.message_id)
    finally:
        engine.dispose()
        backend.release(env)
