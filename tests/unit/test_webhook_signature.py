"""msgtrail.client.verify_webhook: Stripe's scheme, checked the way a receiver would."""

from __future__ import annotations

import hashlib
import hmac
import json

import pytest

from msgtrail.client import WebhookSignatureError, sign_webhook, verify_webhook

SECRET = "whsec_test_3f9a"
BODY = json.dumps({"id": "evt_1", "type": "export.ready", "created": 1_800_000_000,
                   "data": {"export_id": "e1", "state": "ready"}}).encode()
T = 1_800_000_000


def test_a_signature_made_as_documented_verifies() -> None:
    # Written out by hand from the documented scheme, not with msgtrail's own signer.
    mac = hmac.new(SECRET.encode(), f"{T}.".encode() + BODY, hashlib.sha256).hexdigest()
    header = f"t={T},v1={mac}"
    assert sign_webhook(SECRET, BODY, T) == header
    assert verify_webhook(SECRET, BODY, header, now=T + 10)["type"] == "export.ready"
    assert verify_webhook(SECRET, BODY.decode(), header, now=T - 10)["id"] == "evt_1"
    # While a secret rotates, any of several v1 values may match.
    assert verify_webhook(SECRET, BODY, f"t={T},v1={'0' * 64},v1={mac}", now=T)


@pytest.mark.parametrize(("secret", "body", "header", "now", "why"), [
    ("other", BODY, sign_webhook(SECRET, BODY, T), T, "does not match"),
    (SECRET, BODY + b" ", sign_webhook(SECRET, BODY, T), T, "does not match"),
    (SECRET, BODY, sign_webhook(SECRET, BODY, T), T + 301, "tolerance"),
    (SECRET, BODY, sign_webhook(SECRET, BODY, T), T - 301, "tolerance"),
    (SECRET, BODY, f"v1={sign_webhook(SECRET, BODY, T).split('v1=')[1]}", T, "not t="),
    (SECRET, BODY, f"t={T}", T, "not t="),
    (SECRET, BODY, f"t=soon,v1={'0' * 64}", T, "not t="),
    (SECRET, b"[1]", sign_webhook(SECRET, b"[1]", T), T, "not a JSON object"),
])
def test_anything_else_is_refused(secret: str, body: bytes, header: str, now: int,
                                  why: str) -> None:
    with pytest.raises(WebhookSignatureError, match=why):
        verify_webhook(secret, body, header, now=now)
