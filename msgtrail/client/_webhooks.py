"""Completion webhooks' signatures, as Stripe signs its webhooks: the header
`Msgtrail-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<raw body>")>`.

A receiver checks it with `verify_webhook`, over the raw body as received (not a
re-serialised one), and rejects a timestamp older than the tolerance (a replay).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from typing import Any

from msgtrail.client._exceptions import WebhookSignatureError

WEBHOOK_HEADER = "Msgtrail-Signature"


def sign_webhook(secret: str, body: bytes, timestamp: int) -> str:
    """The signature header's value for `body` sent at `timestamp`."""
    return f"t={timestamp},v1={_digest(secret, body, timestamp)}"


def _digest(secret: str, body: bytes, timestamp: int) -> str:
    return hmac.new(secret.encode(), f"{timestamp}.".encode() + body,
                    hashlib.sha256).hexdigest()


def verify_webhook(secret: str, body: bytes | str, header: str, tolerance: float = 300,
                   now: float | None = None) -> dict[str, Any]:
    """The webhook's event (its JSON body) if `header` signs `body` with `secret` no more
    than `tolerance` seconds ago (either way); WebhookSignatureError otherwise. Any of
    several `v1` values may match (while a secret is rotated)."""
    raw = body.encode() if isinstance(body, str) else body
    fields: dict[str, list[str]] = {}
    for part in header.split(","):
        key, sep, value = part.strip().partition("=")
        if sep:
            fields.setdefault(key, []).append(value)
    stamps = fields.get("t", [])
    if len(stamps) != 1 or not stamps[0].isdigit() or not fields.get("v1"):
        raise WebhookSignatureError(f"{WEBHOOK_HEADER} header is not t=<unix>,v1=<hex>: {header!r}")
    timestamp = int(stamps[0])
    age = (time.time() if now is None else now) - timestamp
    if abs(age) > tolerance:
        raise WebhookSignatureError(
            f"signed {age:.0f} s ago, beyond the tolerance of {tolerance:g} s (a replay?)")
    expected = _digest(secret, raw, timestamp)
    if not any(hmac.compare_digest(expected, v) for v in fields["v1"]):
        raise WebhookSignatureError("signature does not match the body and secret")
    try:
        event = json.loads(raw)
    except ValueError:
        raise WebhookSignatureError("signed body is not JSON") from None
    if not isinstance(event, dict):
        raise WebhookSignatureError("signed body is not a JSON object")
    return event
