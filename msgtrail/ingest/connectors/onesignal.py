"""OneSignal Event Streams: one event per request, in the body template docs/connectors.md
gives (OneSignal's flat Liquid keys, `"event.kind": "{{ event.kind }}"`, or the same
fields nested) or in OneSignal's own example body (the flat keys grouped under headings
such as "Event Data" and "Message Data"), authenticated by the app's own msgtrail key
in `Authorization: Key`.
The message id is OneSignal's: a message not seen before is created, so a whole
OneSignal app mirrors itself without registering anything."""

from __future__ import annotations

from typing import Any

from msgtrail.errors import BadRequest, Unauthorized
from msgtrail.ingest.connectors.base import (
    Context,
    Incoming,
    WebhookRequest,
    expand,
    json_body,
    obj,
    text,
    unix_seconds,
)

SOURCE = "onesignal"
CHANNEL = None  # each event names its channel

# The action part of `message.<channel>.<action>` -> msgtrail events. OneSignal has
# spelled some of them two ways (hardbounced/bounced, supressed/suppressed).
ACTIONS: dict[str, tuple[str, ...]] = {
    "sent": ("sent",),
    "received": ("delivered",),
    "delivered": ("delivered",),
    "clicked": ("clicked",),
    "failed": ("failed",),
    "undelivered": ("failed",),
    "unsubscribed": ("unsubscribed",),
    "opened": ("opened",),
    "hardbounced": ("bounced", "failed"),
    "bounced": ("bounced", "failed"),
    "supressed": ("suppressed",),
    "suppressed": ("suppressed",),
    "reported_as_spam": ("reported_spam",),
}
CHANNELS = {"push": "push", "email": "email", "sms": "sms"}


def credential(**_: Any) -> dict[str, Any]:
    return {}


def verify(req: WebhookRequest, cred: dict[str, Any], ctx: Context) -> None:
    scheme, _, key = req.headers.get("authorization", "").strip().partition(" ")
    if scheme.lower() not in ("key", "bearer", "basic") or not key.strip():
        raise Unauthorized("Missing or invalid REST API key for the app.")
    if ctx.key_owner(key.strip()) != ctx.app_id:
        raise Unauthorized("Missing or invalid REST API key for the app.")


# The top-level names of OneSignal's Liquid fields; any other object at the top is a
# heading that groups fields (OneSignal's example body: "Event Data", "Message Data").
_ROOTS = {"event", "message", "user", "subscription"}


def _ungrouped(obj: dict[str, Any]) -> dict[str, Any]:
    """The fields under headings lifted to the top; a field already there wins."""
    out = {k: v for k, v in obj.items() if k in _ROOTS or not isinstance(v, dict)}
    for key, value in obj.items():
        if key not in _ROOTS and isinstance(value, dict):
            for name, field in value.items():
                out.setdefault(name, field)
    return out


def _nested(obj: dict[str, Any]) -> dict[str, Any]:
    """The flat template's dotted keys as nested objects; nested input stays as is."""
    out: dict[str, Any] = {}
    for key, value in obj.items():
        node = out
        parts = key.split(".")
        for part in parts[:-1]:
            child = node.get(part)
            if not isinstance(child, dict):
                child = node[part] = {}
            node = child
        if isinstance(value, dict) and isinstance(node.get(parts[-1]), dict):
            node[parts[-1]].update(value)
        else:
            node[parts[-1]] = value
    return out


def _one(raw: Any) -> list[Incoming]:
    if not isinstance(raw, dict):
        raise BadRequest("body: expected an Event Streams object (or an array of them)")
    doc = _nested(_ungrouped(raw))
    event = obj(doc.get("event"))
    message = obj(doc.get("message"))
    data = obj(event.get("data"))
    kind = text(event.get("kind"))
    if kind is None:
        raise BadRequest("event.kind: required (the Event Streams template's first field)")
    base = Incoming(
        raw=raw, message_id=text(message.get("id")),
        subscription_id=text(event.get("subscription_id")),
        ts=unix_seconds(event.get("timestamp")) or unix_seconds(event.get("datetime")),
        provider_id=text(event.get("id")), onesignal_id=text(event.get("onesignal_id")),
        external_id=text(event.get("external_id")),
        device_type=text(event.get("subscription_device_type")),
        failure_message=text(data.get("failure_reason")), message_name=text(message.get("name")))
    parts = kind.split(".")
    channel = CHANNELS.get(parts[1]) if len(parts) == 3 and parts[0] == "message" else None
    events = ACTIONS.get(parts[2]) if channel else None
    if channel is None or events is None:
        base.problem = f"event kind {kind!r} is not recorded by msgtrail"
        return [base]
    base.channel = channel
    return expand(base, events)


def parse(req: WebhookRequest, ctx: Context) -> list[Incoming]:
    doc = json_body(req)
    items = doc if isinstance(doc, list) else [doc]
    return [incoming for item in items for incoming in _one(item)]
