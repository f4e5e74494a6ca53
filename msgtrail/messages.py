"""Messages: registered as OneSignal's create body, read back with delivery counters."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, func, select

from msgtrail.apps import App
from msgtrail.channels import CHANNELS
from msgtrail.clock import now
from msgtrail.db.schema import messages
from msgtrail.errors import BadRequest, NotFound

# The name column's size.
MAX_NAME = 500

# Fields we compute; a create body may not override them.
_COMPUTED = {"id", "app_id", "successful", "failed", "errored", "converted", "received",
             "remaining", "queued_at", "completed_at", "platform_delivery_stats", "canceled"}


@dataclass(frozen=True)
class Message:
    pk: int
    message_id: str
    app_pk: int
    name: str | None
    target_channel: str
    body: dict[str, Any]
    created_at: int
    stats: dict[str, Any] | None
    purged_at: int | None = None
    # Since when events have been accepted that `stats` does not count yet (None: it
    # counts every one).
    pending_since: int | None = None


def infer_channel(body: dict[str, Any]) -> str:
    """OneSignal's target_channel, or what the body's own fields imply."""
    channel = body.get("target_channel")
    if channel is not None:
        if channel not in CHANNELS:
            raise BadRequest(f"target_channel: must be one of {', '.join(CHANNELS)}")
        return str(channel)
    if any(k in body for k in ("email_subject", "email_body", "include_email_tokens")):
        return "email"
    if any(k in body for k in ("sms_from", "include_phone_numbers", "sms_media_urls")):
        return "sms"
    return "push"


def create(conn: Connection, app: App, body: dict[str, Any],
           message_id: str | None = None, at: int | None = None) -> Message:
    channel = infer_channel(body)
    name = body.get("name")
    if name is not None and not isinstance(name, str):
        raise BadRequest("name: must be a string")
    if name is not None and "\x00" in name:
        raise BadRequest("name: must not contain NUL characters")
    if name is not None and len(name) > MAX_NAME:
        raise BadRequest(f"name: longer than {MAX_NAME} characters")
    contents = body.get("contents")
    if contents is not None and not isinstance(contents, dict):
        raise BadRequest("contents: must be an object of language code to text")
    kept = {k: v for k, v in body.items() if k not in _COMPUTED}
    message_id = message_id or str(uuid.uuid4())
    created = now() if at is None else at  # (the demo's messages were sent hours ago)
    pk = conn.execute(messages.insert().values(
        message_id=message_id, app_pk=app.pk, name=name, target_channel=channel,
        body=json.dumps(kept), created_at=created)).inserted_primary_key[0]  # type: ignore[index]
    return Message(int(pk), message_id, app.pk, name, channel, kept, created, None)


def _row(row) -> Message:  # type: ignore[no-untyped-def]
    return Message(row.id, row.message_id, row.app_pk, row.name, row.target_channel,
                   json.loads(row.body), row.created_at,
                   json.loads(row.stats) if row.stats else None, row.purged_at,
                   row.pending_since)


def find(conn: Connection, app: App, message_id: str) -> Message:
    """The app's message, or NotFound (also for another app's message)."""
    row = conn.execute(select(messages).where(
        messages.c.message_id == message_id, messages.c.app_pk == app.pk)).first()
    if row is None:
        raise NotFound(f"No message with id {message_id} in this app")
    return _row(row)


def by_pk(conn: Connection, pk: int) -> Message:
    """A message by its primary key (one already found)."""
    return _row(conn.execute(select(messages).where(messages.c.id == pk)).one())


def page(conn: Connection, app: App, limit: int, offset: int,
         name: str | None = None) -> tuple[int, list[Message]]:
    """A page of the app's messages, newest first; `name` keeps those whose name
    holds it (case-insensitive)."""
    where = [messages.c.app_pk == app.pk]
    if name:
        escaped = name.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        where.append(messages.c.name.ilike(f"%{escaped}%", escape="\\"))
    total = conn.execute(select(func.count()).select_from(messages)
                         .where(*where)).scalar_one()
    rows = conn.execute(select(messages).where(*where)
                        .order_by(messages.c.created_at.desc(), messages.c.id.desc())
                        .limit(limit).offset(offset)).all()
    return int(total), [_row(r) for r in rows]


def failures(part: dict[str, int]) -> int:
    """Recipients with any failure event; counters stored before `failures` was
    counted have only the `failed` event's."""
    return int(part.get("failures", part.get("failed", 0)))


def _delivery(part: dict[str, int]) -> dict[str, int]:
    return {
        "successful": part["sent"] - _sent_and_failed(part),
        "failed": failures(part),
        "errored": 0,
        "converted": part["clicked"],
        "received": part["delivered"],
    }


def _sent_and_failed(part: dict[str, int]) -> int:
    # Failures are counted among the sent where a recipient has both; never below zero.
    return min(failures(part), part["sent"])


def to_api(message: Message, app: App) -> dict[str, Any]:
    """The NotificationWithMeta shape; SDK-non-nullable fields are omitted, never null."""
    stats = message.stats or {"totals": None, "platforms": {}}
    totals = stats["totals"] or {"recipients": 0, "failures": 0, "sent": 0, "delivered": 0,
                                 "clicked": 0, "unsubscribed": 0}
    body = dict(message.body)
    body.update({
        "id": message.message_id,
        "app_id": app.app_id,
        "target_channel": message.target_channel,
        "queued_at": message.created_at,
        "send_after": message.created_at,
        "remaining": 0,
        "canceled": False,
        **_delivery(totals),
        "platform_delivery_stats": {
            key: _platform(key, part) for key, part in stats["platforms"].items()},
    })
    if message.name is not None:
        body["name"] = message.name
    return body


def _platform(key: str, part: dict[str, int]) -> dict[str, int]:
    data = _delivery(part)
    if key == "email":
        data.update(opened=part.get("opened", 0), unique_opens=part.get("opened", 0),
                    clicks=part["clicked"], unique_clicks=part["clicked"],
                    bounced=part.get("bounced", 0), reported_spam=part.get("reported_spam", 0),
                    unsubscribed=part.get("unsubscribed", 0))
    return data
