"""Mailgun's webhooks: one JSON event per request, signed with HMAC-SHA256 of the
webhook signing key over timestamp + token; a signature older than five minutes is a
replay. Our ids ride in the message's user-variables (`v:` headers)."""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from typing import Any

from msgtrail.errors import BadRequest, Unauthorized
from msgtrail.ingest.connectors.base import (
    Context,
    Incoming,
    WebhookRequest,
    check_age,
    expand,
    ids_from,
    json_body,
    obj,
    text,
    unix_seconds,
)

SOURCE = "mailgun"
CHANNEL = "email"

EVENTS: dict[str, tuple[str, ...]] = {
    "accepted": ("sent",),
    "delivered": ("delivered",),
    "opened": ("opened",),
    "clicked": ("clicked",),
    "unsubscribed": ("unsubscribed",),
    "complained": ("reported_spam",),
}
# A permanent failure for these reasons is Mailgun refusing to send to a suppressed
# address, not a bounce.
SUPPRESSED = {"suppress-bounce", "suppress-unsubscribe", "suppress-complaint"}


def credential(signing_key: str | None = None, **_: Any) -> dict[str, Any]:
    if not signing_key:
        raise BadRequest("mailgun needs --signing-key (Sending > Webhooks: HTTP webhook "
                         "signing key)")
    return {"signing_key": signing_key.strip()}


def _document(req: WebhookRequest) -> dict[str, Any]:
    doc = json_body(req)
    if not isinstance(doc, dict) or not isinstance(doc.get("event-data"), dict):
        raise BadRequest('body: expected {"signature": {...}, "event-data": {...}}')
    return doc


def _signed(signing_key: str, timestamp: str, token: str) -> str:
    return hmac.new(signing_key.encode(), (timestamp + token).encode(),
                    hashlib.sha256).hexdigest()


def test_event(cred: dict[str, Any], url: str, ids: dict[str, str], now: int
               ) -> tuple[str, dict[str, str], bytes]:
    """A delivered event naming `ids` as user-variables, signed as Mailgun signs."""
    timestamp, token = str(now), secrets.token_hex(25)
    return url, {"content-type": "application/json"}, json.dumps({
        "signature": {"timestamp": timestamp, "token": token,
                      "signature": _signed(cred["signing_key"], timestamp, token)},
        "event-data": {"event": "delivered", "timestamp": now, "id": secrets.token_hex(11),
                       "recipient": "test@example.com", "user-variables": ids}}).encode()


def verify(req: WebhookRequest, cred: dict[str, Any], ctx: Context) -> None:
    sig = _document(req).get("signature")
    if not isinstance(sig, dict):
        raise Unauthorized("missing Mailgun signature")
    timestamp, token, given = (str(sig.get(k) or "") for k in ("timestamp", "token",
                                                                "signature"))
    expected = _signed(cred["signing_key"], timestamp, token)
    if not given or not hmac.compare_digest(expected.encode(), given.encode()):
        raise Unauthorized("Mailgun signature does not verify")
    check_age(timestamp, ctx, req.now, "Mailgun")


def parse(req: WebhookRequest, ctx: Context) -> list[Incoming]:
    data = _document(req)["event-data"]
    kind = data.get("event")
    if not isinstance(kind, str):
        raise BadRequest("event-data.event: required")
    status = obj(data.get("delivery-status"))
    variables = obj(data.get("user-variables"))
    base = Incoming(raw=data, ts=unix_seconds(data.get("timestamp")), channel=CHANNEL,
                    device_type="email", provider_id=text(data.get("id")), **ids_from(variables))
    if kind == "failed":
        if data.get("severity") != "permanent":
            return []  # a temporary failure: Mailgun tries again
        reason = text(data.get("reason"))
        base.failure_message = (text(status.get("description")) or text(status.get("message"))
                                or reason)
        return expand(base, ("suppressed",) if reason in SUPPRESSED else ("bounced", "failed"))
    if kind == "rejected":
        # Mailgun refused to send it at all (a bad address, a blocked domain...).
        reject = obj(data.get("reject"))
        base.failure_message = (text(reject.get("description")) or text(reject.get("reason"))
                                or text(data.get("reason")))
        return expand(base, ("failed",))
    if kind not in EVENTS:
        base.problem = f"Mailgun event {kind!r} is not recorded by msgtrail"
        return [base]
    return expand(base, EVENTS[kind])
