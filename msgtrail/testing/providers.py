"""Webhook requests built as each provider builds them, signed with test keys: an
ECDSA P-256 pair for SendGrid, a certificate of a test CA served on loopback for SNS,
HMACs for Twilio and Mailgun, basic auth for Postmark, an app key for OneSignal.

The signing here is written from each provider's documentation, apart from
msgtrail.ingest.connectors, so that a test proves the two agree rather than that the code
agrees with itself.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
import uuid
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from msgtrail.testing.sns import SnsEndpoint


@dataclass(frozen=True)
class Happened:
    """One thing that happened to one recipient, in msgtrail's words."""

    event: str  # sent, delivered, opened, clicked, bounced, failed, unsubscribed, ...
    message_id: str | None
    subscription_id: str | None
    ts: int
    reason: str | None = None


@dataclass
class Call:
    """An HTTP request to msgtrail: path (with query), headers, body."""

    path: str
    headers: dict[str, str]
    body: bytes


def _iso(ts: int) -> str:
    return dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")


# -- SendGrid ---------------------------------------------------------------------

_SENDGRID = {"sent": "processed", "delivered": "delivered", "opened": "open",
             "clicked": "click", "bounced": "bounce", "suppressed": "dropped",
             "reported_spam": "spamreport", "unsubscribed": "unsubscribe"}


@dataclass
class SendGrid:
    source: str = "sendgrid"
    channel: str = "email"
    key: ec.EllipticCurvePrivateKey = field(
        default_factory=lambda: ec.generate_private_key(ec.SECP256R1()))
    events: tuple[str, ...] = tuple(_SENDGRID)

    def options(self) -> dict[str, Any]:
        der = self.key.public_key().public_bytes(serialization.Encoding.DER,
                                                 serialization.PublicFormat.SubjectPublicKeyInfo)
        return {"public_key": base64.b64encode(der).decode()}

    def event(self, h: Happened) -> dict[str, Any]:
        out: dict[str, Any] = {
            "email": "someone@example.com", "timestamp": h.ts, "event": _SENDGRID[h.event],
            "sg_event_id": uuid.uuid4().hex, "sg_message_id": "x.filter0001",
            "smtp-id": "<x@sendgrid.net>"}
        if h.message_id:
            out["msgtrail_message_id"] = h.message_id  # custom_args are top-level keys
        if h.subscription_id:
            out["msgtrail_subscription_id"] = h.subscription_id
        if h.reason:
            out.update(reason=h.reason, status="5.0.0", type="bounce")
        return out

    def calls(self, app_id: str, happened: list[Happened], base_url: str) -> list[Call]:
        body = (json.dumps([self.event(h) for h in happened]) + "\r\n").encode()
        return [self.signed(app_id, body)]

    def signed(self, app_id: str, body: bytes, timestamp: str | None = None) -> Call:
        """The body signed as SendGrid signs it, at `timestamp` (default: now)."""
        timestamp = timestamp or str(int(dt.datetime.now(dt.UTC).timestamp()))
        signature = self.key.sign(timestamp.encode() + body, ec.ECDSA(hashes.SHA256()))
        return Call(f"/webhooks/sendgrid/{app_id}", {
            "content-type": "application/json",
            "X-Twilio-Email-Event-Webhook-Signature": base64.b64encode(signature).decode(),
            "X-Twilio-Email-Event-Webhook-Timestamp": timestamp}, body)


# -- Amazon SES through SNS -----------------------------------------------------------


_SES = {"sent": "Send", "delivered": "Delivery", "opened": "Open", "clicked": "Click",
        "bounced": "Bounce", "reported_spam": "Complaint", "unsubscribed": "Subscription"}


@dataclass
class Ses:
    sns: SnsEndpoint
    topic_arn: str = "arn:aws:sns:eu-west-1:123456789012:msgtrail-ses"
    version: str = "1"
    source: str = "ses"
    channel: str = "email"
    events: tuple[str, ...] = tuple(_SES)

    def options(self) -> dict[str, Any]:
        return {"topic_arns": [self.topic_arn]}

    def event(self, h: Happened) -> dict[str, Any]:
        tags = {"ses:configuration-set": ["msgtrail"]}
        if h.message_id:
            tags["msgtrail_message_id"] = [h.message_id]
        if h.subscription_id:
            tags["msgtrail_subscription_id"] = [h.subscription_id]
        kind = _SES[h.event]
        out: dict[str, Any] = {"eventType": kind, "mail": {
            "timestamp": _iso(h.ts), "messageId": uuid.uuid4().hex,
            "source": "sender@example.com", "destination": ["someone@example.com"],
            "tags": tags}}
        detail: dict[str, Any] = {"timestamp": _iso(h.ts)}
        if kind == "Bounce":
            detail.update(bounceType="Permanent", bounceSubType="General", bouncedRecipients=[
                {"emailAddress": "someone@example.com", "diagnosticCode": h.reason,
                 "status": "5.1.1"}])
        if kind == "Delivery":
            detail["recipients"] = ["someone@example.com"]
        out[{"Send": "send", "Delivery": "delivery", "Open": "open", "Click": "click",
             "Bounce": "bounce", "Complaint": "complaint",
             "Subscription": "subscription"}[kind]] = detail
        return out

    def calls(self, app_id: str, happened: list[Happened], base_url: str) -> list[Call]:
        return [self.call(app_id, self.sns.envelope(
            "Notification", self.topic_arn, {"Message": json.dumps(self.event(h))},
            self.version)) for h in happened]

    def call(self, app_id: str, doc: dict[str, str]) -> Call:
        return Call(f"/webhooks/ses/{app_id}", {
            "content-type": "text/plain; charset=UTF-8",
            "x-amz-sns-message-type": doc["Type"]}, json.dumps(doc).encode())


# -- Twilio -----------------------------------------------------------------------------

_TWILIO = {"sent": "sent", "delivered": "delivered", "failed": "undelivered"}


def twilio_signature(auth_token: str, url: str, params: dict[str, str]) -> str:
    """Twilio's documented scheme: the full URL, then each POST parameter's name and
    value sorted by name, HMAC-SHA1 with the auth token, base64."""
    data = url + "".join(k + params[k] for k in sorted(params))
    return base64.b64encode(hmac.new(auth_token.encode(), data.encode(),
                                     hashlib.sha1).digest()).decode()


@dataclass
class Twilio:
    auth_token: str = field(default_factory=lambda: uuid.uuid4().hex)
    source: str = "twilio"
    channel: str = "sms"
    events: tuple[str, ...] = tuple(_TWILIO)

    def options(self) -> dict[str, Any]:
        return {"auth_token": self.auth_token}

    def calls(self, app_id: str, happened: list[Happened], base_url: str) -> list[Call]:
        out = []
        for h in happened:
            query = {k: v for k, v in (("msgtrail_message_id", h.message_id),
                                       ("msgtrail_subscription_id", h.subscription_id)) if v}
            path = f"/webhooks/twilio/{app_id}" + (f"?{urlencode(query)}" if query else "")
            form = {"MessageSid": "SM" + uuid.uuid4().hex, "MessageStatus": _TWILIO[h.event],
                    "SmsStatus": _TWILIO[h.event], "AccountSid": "AC" + "0" * 32,
                    "To": "+15005550006", "From": "+15005550001", "ApiVersion": "2010-04-01"}
            if h.reason:
                form["ErrorCode"] = h.reason
            out.append(Call(path, {
                "content-type": "application/x-www-form-urlencoded",
                "X-Twilio-Signature": twilio_signature(self.auth_token, base_url + path, form)},
                urlencode(form).encode()))
        return out


# -- Postmark ---------------------------------------------------------------------------

_POSTMARK = {"delivered": "Delivery", "opened": "Open", "clicked": "Click",
             "bounced": "Bounce", "reported_spam": "SpamComplaint"}


@dataclass
class Postmark:
    password: str = field(default_factory=lambda: uuid.uuid4().hex)
    source: str = "postmark"
    channel: str = "email"
    events: tuple[str, ...] = tuple(_POSTMARK)

    def options(self) -> dict[str, Any]:
        return {"password": self.password}

    def calls(self, app_id: str, happened: list[Happened], base_url: str) -> list[Call]:
        auth = base64.b64encode(f"msgtrail:{self.password}".encode()).decode()
        out = []
        for h in happened:
            kind = _POSTMARK[h.event]
            meta = {k: v for k, v in (("msgtrail_message_id", h.message_id),
                                      ("msgtrail_subscription_id", h.subscription_id)) if v}
            at = {"Delivery": "DeliveredAt", "Bounce": "BouncedAt",
                  "SpamComplaint": "BouncedAt"}.get(kind, "ReceivedAt")
            record: dict[str, Any] = {"RecordType": kind, "MessageID": str(uuid.uuid4()),
                                      "Recipient": "someone@example.com", "Metadata": meta,
                                      "MessageStream": "outbound", at: _iso(h.ts)}
            if kind == "Bounce":
                record.update(ID=int(h.ts), Type="HardBounce", TypeCode=1,
                              Description=h.reason, Email="someone@example.com")
            out.append(Call(f"/webhooks/postmark/{app_id}", {
                "content-type": "application/json", "authorization": f"Basic {auth}"},
                json.dumps(record).encode()))
        return out


# -- Mailgun ----------------------------------------------------------------------------

_MAILGUN = {"sent": "accepted", "delivered": "delivered", "opened": "opened",
            "clicked": "clicked", "bounced": "failed", "unsubscribed": "unsubscribed",
            "reported_spam": "complained"}


@dataclass
class Mailgun:
    signing_key: str = field(default_factory=lambda: "key-" + uuid.uuid4().hex)
    source: str = "mailgun"
    channel: str = "email"
    events: tuple[str, ...] = tuple(_MAILGUN)
    # When the signature says it was made (None: now).
    signed_at: int | None = None

    def options(self) -> dict[str, Any]:
        return {"signing_key": self.signing_key}

    def calls(self, app_id: str, happened: list[Happened], base_url: str) -> list[Call]:
        out = []
        for h in happened:
            variables = {k: v for k, v in (("msgtrail_message_id", h.message_id),
                                           ("msgtrail_subscription_id", h.subscription_id)) if v}
            data: dict[str, Any] = {"event": _MAILGUN[h.event], "timestamp": h.ts + 0.25,
                                    "id": uuid.uuid4().hex, "recipient": "someone@example.com",
                                    "user-variables": variables}
            if h.event == "bounced":
                data.update(severity="permanent", reason="bounce",
                            **{"delivery-status": {"code": 550, "description": h.reason}})
            timestamp = str(self.signed_at or int(dt.datetime.now(dt.UTC).timestamp()))
            token = uuid.uuid4().hex
            signature = hmac.new(self.signing_key.encode(), (timestamp + token).encode(),
                                 hashlib.sha256).hexdigest()
            body = {"signature": {"timestamp": timestamp, "token": token,
                                  "signature": signature}, "event-data": data}
            out.append(Call(f"/webhooks/mailgun/{app_id}", {"content-type": "application/json"},
                            json.dumps(body).encode()))
        return out


# -- OneSignal Event Streams ------------------------------------------------------------

_ONESIGNAL = {"sent": "sent", "delivered": "received", "clicked": "clicked",
              "failed": "failed", "unsubscribed": "unsubscribed"}


@dataclass
class OneSignal:
    api_key: str = ""
    channel: str = "push"
    # The flat Liquid template docs/connectors.md documents; False: the same fields nested.
    flat: bool = True
    # OneSignal's own documented example body instead: the flat fields grouped under
    # "Event Data" and "Message Data", with every field it lists (empty where unset).
    documented: bool = False
    source: str = "onesignal"
    events: tuple[str, ...] = tuple(_ONESIGNAL)

    def options(self) -> dict[str, Any]:
        return {}

    def event(self, h: Happened) -> dict[str, Any]:
        nested: dict[str, Any] = {
            "event": {"kind": f"message.{self.channel}.{_ONESIGNAL[h.event]}",
                      "id": str(uuid.uuid4()), "timestamp": str(h.ts),
                      "subscription_id": h.subscription_id or "",
                      "onesignal_id": "", "external_id": "",
                      "data": {"failure_reason": h.reason or ""}},
            "message": {"id": h.message_id or "", "name": "Spring sale"}}
        if not self.flat:
            return nested
        if self.documented:
            return {"Event Data": {
                "event.kind": nested["event"]["kind"], "event.id": nested["event"]["id"],
                "event.timestamp": str(h.ts), "event.datetime": _iso(h.ts),
                "event.app_id": str(uuid.uuid4()), "event.subscription_device_type": "Android",
                "event.subscription_id": h.subscription_id or "", "event.onesignal_id": "",
                "event.external_id": "", "event.data.page_name": "", "event.data.page_id": "",
                "event.data.target_name": "", "event.data.target_id": "",
                "event.data.failure_reason": h.reason or ""},
                "Message Data": {
                "message.id": h.message_id or "", "message.name": "Spring sale",
                "message.title": "Sale", "message.contents": "50% off", "template_id": "",
                "message.template_id": "", "message.url": "", "message.app_url": "",
                "message.web_url": ""}}
        return {"event.kind": nested["event"]["kind"], "event.id": nested["event"]["id"],
                "event.timestamp": str(h.ts), "message.id": h.message_id or "",
                "message.name": "Spring sale",
                "event.subscription_id": h.subscription_id or "",
                "event.onesignal_id": "", "event.external_id": "",
                "event.data.failure_reason": h.reason or ""}

    def calls(self, app_id: str, happened: list[Happened], base_url: str) -> list[Call]:
        return [Call(f"/webhooks/onesignal/{app_id}", {
            "content-type": "application/json", "authorization": f"Key {self.api_key}"},
            json.dumps(self.event(h)).encode()) for h in happened]
