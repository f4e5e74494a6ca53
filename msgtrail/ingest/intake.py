"""Record provider events: attribute each to an app's message and recipient, keep the
ones that cannot be attributed (with why) among the app's webhook rejections, and
commit requests in groups.

Providers send one small request per event, and each must be answered only once it
is durable. A transaction per request would cap a SQLite database at its commit rate;
instead every request in flight joins the next commit of one writer thread (group
commit), so 32 concurrent senders cost one commit, not 32.
"""

from __future__ import annotations

import hashlib
import json
import logging
import queue
import threading
import time
from collections import deque
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Engine, func, insert, select

from msgtrail.apps import App
from msgtrail.channels import CHANNEL_EVENTS, EVENT_CODE
from msgtrail.db import statements as sql
from msgtrail.db.schema import connector_events, messages, webhook_rejections
from msgtrail.ingest.connectors.base import Incoming, canonical_uuid
from msgtrail.messages import MAX_NAME
from msgtrail.runtime import metrics
from msgtrail.store import activity, event_batch
from msgtrail.store.event_batch import FUTURE_SLACK, MAX_TEXT, MIN_TIMESTAMP

log = logging.getLogger(__name__)

# Requests joined into one transaction at most: enough for every sender in flight,
# few enough that one commit stays short.
MAX_GROUP = 512
# Each connector keeps its last events, with their outcome, for its page: a group
# writes at most this many of each and deletes the older ones.
RECENT_EVENTS = 20
RECORDED = "recorded"
# A test event (the connectors page's "Send a test event") names this message: it is
# answered and shown among the connector's last events, never recorded nor rejected.
TEST_MESSAGE_ID = "00000000-0000-0000-0000-000000000000"
TEST_EVENT = "test event: verified, not recorded"

@dataclass(frozen=True)
class Delivery:
    """The events of one provider request, for one app."""

    app: App
    source: str
    events: list[Incoming]
    now: int


@dataclass(frozen=True)
class Outcome:
    accepted: int
    rejected: int


@dataclass(frozen=True)
class _Target:
    pk: int
    channel: str
    purged: bool


def _text(value: str | None, size: int) -> str | None:
    """A provider's text as stored: cut to its column's size, without NUL characters
    (which PostgreSQL text cannot hold and no real value has)."""
    if not value:
        return None
    return value.replace("\x00", "")[:size] or None


def _digest(source: str, incoming: Incoming) -> str:
    """What makes a retried event the same rejection: the provider's event id, or the
    event itself where the provider gives none."""
    key = incoming.provider_id or json.dumps(incoming.raw, sort_keys=True, default=str)
    return hashlib.sha256(f"{source}\0{key}".encode()).hexdigest()


def _find(conn: Connection, delivery: Delivery, incoming: Incoming, message_id: str,
          cache: dict[tuple[int, str], _Target | None]) -> _Target | None:
    """The delivery's app's message of that id. Ids are unique within an app only, so
    another app's message is never seen here: its id reads as unknown."""
    key = (delivery.app.pk, message_id)
    if key not in cache:
        row = conn.execute(select(messages.c.id, messages.c.target_channel,
                                  messages.c.purged_at)
                           .where(messages.c.app_pk == delivery.app.pk,
                                  messages.c.message_id == message_id)).first()
        if row is None and delivery.source == "onesignal" and incoming.channel:
            # OneSignal's message ids are its own: mirror the message on first sight.
            body = {"name": _text(incoming.message_name, MAX_NAME),
                    "target_channel": incoming.channel}
            conn.execute(sql.CREATE_MESSAGE, {
                "message_id": message_id, "app_pk": delivery.app.pk,
                "name": _text(incoming.message_name, MAX_NAME), "channel": incoming.channel,
                "body": json.dumps({k: v for k, v in body.items() if v is not None}),
                "at": delivery.now})
            return _find(conn, delivery, incoming, message_id, cache)
        cache[key] = None if row is None else _Target(row[0], row[1], row[2] is not None)
    return cache[key]


def _problem(conn: Connection, delivery: Delivery, incoming: Incoming,
             cache: dict[tuple[int, str], _Target | None]) -> tuple[str | None, _Target | None]:
    """Why the event cannot be recorded (None: it can), and its message."""
    if incoming.problem:
        return incoming.problem, None
    id_names = (("message.id", "event.subscription_id") if delivery.source == "onesignal"
                else ("msgtrail_message_id", "msgtrail_subscription_id"))
    for name, value in zip(id_names, (incoming.message_id, incoming.subscription_id),
                           strict=True):
        if value is None:
            return f"no {name} in the event", None
        if canonical_uuid(value) is None:
            return f"{name} {value!r} is not a UUID", None
    if canonical_uuid(incoming.message_id) == TEST_MESSAGE_ID:
        return TEST_EVENT, None
    target = _find(conn, delivery, incoming, str(canonical_uuid(incoming.message_id)), cache)
    if target is None:
        return f"no message {incoming.message_id} in this app", None
    if target.purged:
        return f"message {incoming.message_id} is past its activity retention", None
    if incoming.channel and incoming.channel != target.channel:
        return (f"channel mismatch: a {incoming.channel} event for a {target.channel}"
                " message"), None
    if incoming.event not in CHANNEL_EVENTS[target.channel]:
        return f"{incoming.event!r} is not an event of a {target.channel} message", None
    if incoming.onesignal_id is not None and canonical_uuid(incoming.onesignal_id) is None:
        return f"onesignal_id {incoming.onesignal_id!r} is not a UUID", None
    ts = incoming.ts if incoming.ts is not None else delivery.now
    if not MIN_TIMESTAMP <= ts <= delivery.now + FUTURE_SLACK:
        return f"timestamp {ts} is out of range", None
    if incoming.external_id and len(incoming.external_id) > MAX_TEXT["external_id"]:
        return f"external id longer than {MAX_TEXT['external_id']} characters", None
    return None, target


# The last events of each (app, source) in a group, for connector_events.
Recent = dict[tuple[int, str], deque[dict[str, Any]]]


def _attribute(conn: Connection, delivery: Delivery, cache: dict[tuple[int, str], _Target | None],
               rows: dict[int, list[tuple[Any, ...]]], rejections: list[dict[str, Any]],
               recent: Recent) -> Outcome:
    accepted = rejected = 0
    last = recent.setdefault((delivery.app.pk, delivery.source),
                             deque(maxlen=RECENT_EVENTS))
    for incoming in delivery.events:
        problem, target = _problem(conn, delivery, incoming, cache)
        last.append({"app_pk": delivery.app.pk, "source": delivery.source,
                     "received_at": delivery.now, "event": _text(incoming.event, 32),
                     "message_id": _text(incoming.message_id, 100),
                     "subscription_id": _text(incoming.subscription_id, 100),
                     "outcome": problem or RECORDED})
        if problem == TEST_EVENT:
            continue
        if problem is not None or target is None:
            rejected += 1
            rejections.append({
                "app_pk": delivery.app.pk, "source": delivery.source, "reason": problem,
                "message_id": _text(incoming.message_id, 100),
                "event": json.dumps(incoming.raw, default=str),
                "digest": _digest(delivery.source, incoming), "at": delivery.now})
            continue
        accepted += 1
        rows.setdefault(target.pk, []).append((
            canonical_uuid(incoming.subscription_id), EVENT_CODE[str(incoming.event)],
            incoming.ts if incoming.ts is not None else delivery.now,
            canonical_uuid(incoming.onesignal_id),
            _text(incoming.external_id, MAX_TEXT["external_id"]),
            _text(incoming.device_type, MAX_TEXT["device_type"]),
            _text(incoming.failure_message, MAX_TEXT["failure_message"])))
    return Outcome(accepted, rejected)


def record(engine: Engine, deliveries: list[Delivery]) -> list[Outcome]:
    """Record the deliveries in one transaction: each message's events as one batch
    of its log, in the order the requests came, and each connector's last events."""
    with engine.begin() as conn:
        cache: dict[tuple[int, str], _Target | None] = {}
        rows: dict[int, list[tuple[Any, ...]]] = {}
        rejections: list[dict[str, Any]] = []
        recent: Recent = {}
        outcomes = [_attribute(conn, d, cache, rows, rejections, recent) for d in deliveries]
        at = max(d.now for d in deliveries)
        for message_pk, events in rows.items():
            activity.append(conn, message_pk,
                            event_batch.columns([(i, *e) for i, e in enumerate(events)]), at)
        if rejections:
            conn.execute(sql.INSERT_REJECTION, rejections)
        for (app_pk, source), last in recent.items():
            if last:
                conn.execute(insert(connector_events), list(last))
                conn.execute(sql.TRIM_CONNECTOR_EVENTS, {"app_pk": app_pk, "source": source,
                                                         "keep": RECENT_EVENTS})
    return outcomes


def recent_events(engine: Engine, app_pk: int, source: str) -> list[dict[str, Any]]:
    """The connector's last events, newest first."""
    with engine.connect() as conn:
        found = conn.execute(select(connector_events).where(
            connector_events.c.app_pk == app_pk, connector_events.c.source == source)
            .order_by(connector_events.c.id.desc()).limit(RECENT_EVENTS)).mappings().all()
        conn.rollback()
    return [dict(r) for r in found]


class GroupCommit:
    """One writer thread that records every delivery queued while it was busy in one
    transaction. A group that fails is retried one delivery at a time, so that one
    request's failure is never another's."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._queue: queue.SimpleQueue[tuple[Delivery, Future[Outcome]] | None] = (
            queue.SimpleQueue())
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()

    def submit(self, delivery: Delivery) -> Future[Outcome]:
        future: Future[Outcome] = Future()
        self._queue.put((delivery, future))
        if self._thread is None:
            with self._start_lock:
                if self._thread is None:
                    self._thread = threading.Thread(target=self._run, name="group-commit",
                                                    daemon=True)
                    self._thread.start()
        return future

    def close(self) -> None:
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join()

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            group = [item]
            stop = False
            while len(group) < MAX_GROUP:
                try:
                    more = self._queue.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    stop = True
                    break
                group.append(more)
            self._commit(group)
            if stop:
                return

    def _commit(self, group: list[tuple[Delivery, Future[Outcome]]]) -> None:
        started = time.perf_counter()
        try:
            outcomes = record(self._engine, [d for d, _ in group])
            metrics.GROUP_SECONDS.observe(time.perf_counter() - started)
            metrics.GROUP_SIZE.observe(len(group))
        except Exception as exc:  # noqa: BLE001 - handed to the waiting request
            if len(group) == 1:
                group[0][1].set_exception(exc)
                return
            log.warning("group of %d deliveries failed (%s); recording one by one",
                        len(group), exc)
            for one in group:
                self._commit([one])
            return
        _count(group, outcomes)
        for (_, future), outcome in zip(group, outcomes, strict=True):
            future.set_result(outcome)


def _count(group: list[tuple[Delivery, Future[Outcome]]], outcomes: list[Outcome]) -> None:
    """The group's events accepted and rejected, counted once per source before any
    request is answered (a scrape after an answer sees them). Counted per request on
    the event loop, they took ~3% of its time on single-event webhooks."""
    accepted: dict[str, int] = {}
    rejected: dict[str, int] = {}
    for (delivery, _), outcome in zip(group, outcomes, strict=True):
        accepted[delivery.source] = accepted.get(delivery.source, 0) + outcome.accepted
        rejected[delivery.source] = rejected.get(delivery.source, 0) + outcome.rejected
    for source, n in accepted.items():
        metrics.EVENTS_ACCEPTED.labels(source).inc(n)
        if rejected[source]:
            metrics.EVENTS_REJECTED.labels(source, "not attributed").inc(rejected[source])


def rejections(engine: Engine, app_pk: int, source: str | None, limit: int,
               offset: int) -> dict[str, Any]:
    """A page of an app's webhook rejections, newest first."""
    where = [webhook_rejections.c.app_pk == app_pk]
    if source:
        where.append(webhook_rejections.c.source == source)
    with engine.connect() as conn:
        total = conn.execute(select(func.count()).select_from(webhook_rejections)
                             .where(*where)).scalar_one()
        rows = conn.execute(select(webhook_rejections).where(*where)
                            .order_by(webhook_rejections.c.id.desc())
                            .limit(limit).offset(offset)).all()
        conn.rollback()
    return {"total_count": total, "offset": offset, "limit": limit, "rejections": [
        {"id": r.id, "source": r.source, "reason": r.reason, "message_id": r.message_id,
         "received_at": r.received_at, "event": json.loads(r.event)} for r in rows]}
