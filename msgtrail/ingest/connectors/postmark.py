"""Postmark's webhooks: one JSON record per request, authenticated by the basic auth
credentials written into the webhook URL (user `msgtrail`). Our ids ride in the
message's `Metadata`."""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import secrets
import time
from typing import Any

from msgtrail.errors import BadRequest, Unauthorized
from msgtrail.ingest.connectors.base import (
    Context,
    Incoming,
    WebhookRequest,
    expand,
    ids_from,
    json_body,
    obj,
    text,
    unix_seconds,
)

SOURCE = "postmark"
CHANNEL = "email"
USER = "msgtrail"

# Bounce types that mean the address will not take mail; the others (SoftBounce,
# Transient, DnsError, AutoResponder, ...) are Postmark still trying, or not failures.
HARD_BOUNCES = {"HardBounce", "BadEmailAddress", "ManuallyDeactivated", "Blocked",
                "SpamNotification", "DMARCPolicy", "InboundError"}
_TIME_FIELD = {"Delivery": "DeliveredAt", "Bounce": "BouncedAt", "SpamComplaint": "BouncedAt",
               "Open": "ReceivedAt", "Click": "ReceivedAt", "SubscriptionChange": "ChangedAt"}


def credential(password: str | None = None, **_: Any) -> dict[str, Any]:
    return {"password": password or secrets.token_urlsafe(24)}


def test_event(cred: dict[str, Any], url: str, ids: dict[str, str], now: int
               ) -> tuple[str, dict[str, str], bytes]:
    """A Delivery record naming `ids` in its Metadata, with the basic auth Postmark
    sends (the URL without it)."""
    scheme, _, rest = url.partition("://")
    auth = base64.b64encode(f"{USER}:{cred['password']}".encode()).decode()
    return f"{scheme}://{rest.rpartition('@')[2]}", {
        "content-type": "application/json", "authorization": f"Basic {auth}"}, json.dumps({
            "RecordType": "Delivery", "MessageID": secrets.token_hex(16),
            "Recipient": "test@example.com", "MessageStream": "outbound", "Metadata": ids,
            "DeliveredAt": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now))}).encode()


def verify(req: WebhookRequest, cred: dict[str, Any], ctx: Context) -> None:
    scheme, _, value = req.headers.get("authorization", "").partition(" ")
    try:
        user, _, password = base64.b64decode(value, validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        user = password = ""
    good_user = hmac.compare_digest(user.encode(), USER.encode())
    good_password = hmac.compare_digest(password.encode(), cred["password"].encode())
    if scheme.lower() != "basic" or not (good_user and good_password):
        raise Unauthorized("missing or wrong basic auth credentials in the webhook URL")


def parse(req: WebhookRequest, ctx: Context) -> list[Incoming]:
    doc = json_body(req)
    if not isinstance(doc, dict) or not isinstance(doc.get("RecordType"), str):
        raise BadRequest("body: expected a Postmark webhook record with a RecordType")
    kind = doc["RecordType"]
    meta = obj(doc.get("Metadata"))
    base = Incoming(raw=doc, ts=unix_seconds(doc.get(_TIME_FIELD.get(kind, ""))),
                    channel=CHANNEL, device_type="email",
                    provider_id=text(doc.get("ID")) or
                    f"{doc.get('MessageID')}:{kind}:{doc.get(_TIME_FIELD.get(kind, ''))}",
                    **ids_from(meta))
    if kind == "Delivery":
        return expand(base, ("delivered",))
    if kind == "Open":
        return expand(base, ("opened",))
    if kind == "Click":
        return expand(base, ("clicked",))
    if kind == "SpamComplaint":
        return expand(base, ("reported_spam",))
    if kind == "Bounce":
        if doc.get("Type") not in HARD_BOUNCES:
            return []
        base.failure_message = text(doc.get("Description")) or text(doc.get("Details"))
        return expand(base, ("bounced", "failed"))
    if kind == "SubscriptionChange":
        if not doc.get("SuppressSending"):
            return []  # a reactivation: nothing happened to this message
        reason = doc.get("SuppressionReason")
        if reason == "ManualSuppression":
            return expand(base, ("unsubscribed",))
        if reason == "SpamComplaint":
            return expand(base, ("reported_spam",))
        return expand(base, ("suppressed",))
    base.problem = f"Postmark record {kind!r} is not recorded by msgtrail"
    return [base]
