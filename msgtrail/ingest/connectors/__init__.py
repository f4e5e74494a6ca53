"""Provider webhooks: each module checks a request exactly as its provider signs it
and reads its events in msgtrail's terms. `msgtrail.ingest.intake` records them."""

from __future__ import annotations

from types import ModuleType

from msgtrail.ingest.connectors import mailgun, onesignal, postmark, sendgrid, ses, twilio

SOURCES: dict[str, ModuleType] = {
    m.SOURCE: m for m in (onesignal, sendgrid, ses, twilio, postmark, mailgun)}
