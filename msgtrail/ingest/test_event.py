"""A connector's test event ("Send a test event" on the connectors page): a sample of
its provider's webhook, signed with the app's stored credential as the provider signs
it and posted to msgtrail's own public URL, so that it goes the way the provider's
events go (the address, a proxy, TLS, the route, the signature, the reading). It names
intake.TEST_MESSAGE_ID: answered, and listed among the connector's last events, but
never recorded. SendGrid, SES and OneSignal sign with what msgtrail does not hold
(SendGrid's private key, AWS's certificate, the app's API key in clear): their own
consoles send test events."""

from __future__ import annotations

from typing import Any

import httpx

from msgtrail.clock import now
from msgtrail.ingest import connections
from msgtrail.ingest.connectors import SOURCES
from msgtrail.ingest.intake import TEST_MESSAGE_ID

SIGNED_HERE = ("twilio", "postmark", "mailgun")
TIMEOUT_SECONDS = 10.0


def send(public_url: str, source: str, app_id: str, credential: dict[str, Any]
         ) -> tuple[bool, str]:
    """Post a test event of `source` to the app's webhook URL: whether msgtrail
    answered it 200, and what happened, in a sentence."""
    url = connections.webhook_url(public_url, source, app_id, credential)
    ids = {"msgtrail_message_id": TEST_MESSAGE_ID, "msgtrail_subscription_id": TEST_MESSAGE_ID}
    target, headers, body = SOURCES[source].test_event(credential, url, ids, int(now()))
    try:
        answer = httpx.post(target, headers=headers, content=body, timeout=TIMEOUT_SECONDS)
    except httpx.HTTPError as exc:
        return False, (f"The test event could not reach {public_url} ({exc or type(exc).__name__})."
                       " Providers call this address: MSGTRAIL_PUBLIC_URL must be one they"
                       " can reach.")
    if answer.status_code != 200:
        return False, (f"{public_url} answered the test event {answer.status_code}:"
                       f" {answer.text[:300]}")
    return True, f"The test event reached {public_url} and was verified (answered 200)."
