"""SendGrid's Event Webhook: a JSON array of events, signed with ECDSA P-256/SHA-256
over the timestamp header followed by the raw body (the Signed Event Webhook); a
timestamp outside the replay window (five minutes by default) is refused."""

from __future__ import annotations

import base64
import binascii
from functools import lru_cache
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import load_der_public_key

from msgtrail.errors import BadRequest, Unauthorized
from msgtrail.ingest.connectors.base import (
    Context,
    Incoming,
    WebhookRequest,
    check_age,
    expand,
    ids_from,
    json_body,
    text,
    unix_seconds,
)

SOURCE = "sendgrid"
CHANNEL = "email"
SIGNATURE = "x-twilio-email-event-webhook-signature"
TIMESTAMP = "x-twilio-email-event-webhook-timestamp"

# SendGrid event -> msgtrail events. Absent: transient states (deferred, processed's
# predecessors) and events msgtrail does not record; those are not events here.
EVENTS: dict[str, tuple[str, ...]] = {
    "processed": ("sent",),
    "delivered": ("delivered",),
    "open": ("opened",),
    "click": ("clicked",),
    "bounce": ("bounced", "failed"),
    "dropped": ("suppressed",),
    "spamreport": ("reported_spam",),
    "unsubscribe": ("unsubscribed",),
    "group_unsubscribe": ("unsubscribed",),
}
TRANSIENT = {"deferred", "group_resubscribe"}


@lru_cache(maxsize=256)
def _public_key(encoded: str) -> ec.EllipticCurvePublicKey:
    try:
        key = load_der_public_key(base64.b64decode(encoded, validate=True))
    except (ValueError, binascii.Error):
        raise BadRequest("public key: not a base64 DER public key") from None
    if not isinstance(key, ec.EllipticCurvePublicKey) or key.curve.name != "secp256r1":
        raise BadRequest("public key: not an ECDSA P-256 key")
    return key


def credential(public_key: str | None = None, **_: Any) -> dict[str, Any]:
    if not public_key:
        raise BadRequest("sendgrid needs --public-key (Settings > Mail Settings > "
                         "Signed Event Webhook: the verification key)")
    _public_key(public_key.strip())
    return {"public_key": public_key.strip()}


def verify(req: WebhookRequest, cred: dict[str, Any], ctx: Context) -> None:
    signature, timestamp = req.headers.get(SIGNATURE), req.headers.get(TIMESTAMP)
    if not signature or not timestamp:
        raise Unauthorized("missing SendGrid signature headers")
    try:
        _public_key(cred["public_key"]).verify(
            base64.b64decode(signature), timestamp.encode() + req.body,
            ec.ECDSA(hashes.SHA256()))
    except (InvalidSignature, ValueError, binascii.Error):
        raise Unauthorized("SendGrid signature does not verify") from None
    # The signature covers the timestamp, so only its age tells a replay.
    check_age(timestamp, ctx, req.now, "SendGrid")


def parse(req: WebhookRequest, ctx: Context) -> list[Incoming]:
    doc = json_body(req)
    if not isinstance(doc, list):
        raise BadRequest("body: expected a JSON array of SendGrid events")
    out: list[Incoming] = []
    for i, raw in enumerate(doc):
        if not isinstance(raw, dict) or not isinstance(raw.get("event"), str):
            raise BadRequest(f"[{i}]: expected an event object with an 'event' name")
        kind = raw["event"]
        if kind in TRANSIENT:
            continue
        # Custom args arrive as top-level keys of each event.
        base = Incoming(raw=raw, ts=unix_seconds(raw.get("timestamp")), channel=CHANNEL,
                        provider_id=text(raw.get("sg_event_id")), device_type="email",
                        failure_message=text(raw.get("reason")), **ids_from(raw))
        if kind == "bounce" and raw.get("type") == "blocked":
            # A temporary refusal by the receiving server: a failure that a later
            # delivery (SendGrid tries again) outweighs, not a bounce.
            out.extend(expand(base, ("failed",)))
            continue
        if kind not in EVENTS:
            base.problem = f"SendGrid event {kind!r} is not recorded by msgtrail"
            out.append(base)
            continue
        out.extend(expand(base, EVENTS[kind]))
    return out
