"""Amazon SES events, published to an SNS topic (a configuration set's event
destination, or an identity's notifications) that msgtrail is subscribed to. Only
topics given at connect time are accepted: any AWS account can sign a valid SNS
message for its own topic. Our ids ride in the message tags (`mail.tags`).

Tags belong to an SES message, not to a recipient. A message sent to one address is
that address's subscription (the tag's). A message sent to several is recorded per
address: each one's subscription id is `uuid5(NAMESPACE_URL, "mailto:" + address)`
(lower case), so that every recipient an event names gets its own row."""

from __future__ import annotations

import json
import uuid
from dataclasses import replace
from typing import Any

from msgtrail.errors import BadRequest, Forbidden
from msgtrail.ingest.connectors import sns
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

SOURCE = "ses"
CHANNEL = "email"

# eventType (or notificationType) -> (detail object, where its recipients are, events)
_KINDS: dict[str, tuple[str, str | None, tuple[str, ...]]] = {
    "Send": ("send", None, ("sent",)),
    "Delivery": ("delivery", "recipients", ("delivered",)),
    "Bounce": ("bounce", "bouncedRecipients", ("bounced", "failed")),
    "Complaint": ("complaint", "complainedRecipients", ("reported_spam",)),
    "Reject": ("reject", None, ("failed",)),
    "Open": ("open", None, ("opened",)),
    "Click": ("click", None, ("clicked",)),
    "Subscription": ("subscription", None, ("unsubscribed",)),
    "Rendering Failure": ("failure", None, ("failed",)),
}
TRANSIENT = {"DeliveryDelay"}


def credential(topic_arns: tuple[str, ...] | list[str] | None = None, **_: Any) -> dict[str, Any]:
    arns = [a.strip() for a in topic_arns or () if a.strip()]
    if not arns or not all(a.startswith("arn:") for a in arns):
        raise BadRequest("ses needs --topic-arn ARN (one or more SNS topic ARNs)")
    return {"topic_arns": arns}


def _envelope(req: WebhookRequest) -> dict[str, Any]:
    doc = json_body(req)
    if not isinstance(doc, dict) or not isinstance(doc.get("Type"), str):
        raise BadRequest("body: expected an SNS message")
    return doc


def verify(req: WebhookRequest, cred: dict[str, Any], ctx: Context) -> None:
    doc = _envelope(req)
    sns.verify(doc, ctx)
    if doc.get("TopicArn") not in cred["topic_arns"]:
        raise Forbidden(f"TopicArn {doc.get('TopicArn')!r} is not connected to this app")


def parse(req: WebhookRequest, ctx: Context) -> list[Incoming]:
    doc = _envelope(req)
    if doc["Type"] == "SubscriptionConfirmation":
        sns.confirm(doc, ctx)
        return []
    if doc["Type"] != "Notification":
        return []  # UnsubscribeConfirmation: nothing to record
    try:
        event = json.loads(doc.get("Message") or "")
    except ValueError:
        raise BadRequest("Message: not an SES event (JSON)") from None
    if not isinstance(event, dict) or not isinstance(event.get("mail"), dict):
        raise BadRequest("Message: not an SES event (no mail object)")
    kind = event.get("eventType") or event.get("notificationType")
    mail = event["mail"]
    if kind in TRANSIENT:
        return []
    tags = obj(mail.get("tags"))
    base = Incoming(raw=event, channel=CHANNEL, device_type="email", **ids_from(tags),
                    provider_id=f"{mail.get('messageId')}:{kind}:{doc.get('MessageId')}")
    if kind not in _KINDS:
        base.problem = f"SES event {kind!r} is not recorded by msgtrail"
        return [base]
    detail_name, recipients_field, events = _KINDS[str(kind)]
    detail = obj(event.get(detail_name))
    if kind == "Bounce" and detail.get("bounceType") != "Permanent":
        return []  # transient and undetermined bounces: SES is still trying
    base.ts = unix_seconds(detail.get("timestamp") or mail.get("timestamp"))
    if kind == "Reject":
        base.failure_message = text(detail.get("reason"))
    if kind == "Rendering Failure":
        base.failure_message = text(detail.get("errorMessage"))
    destination = [a for a in (text(x) for x in _listed(mail.get("destination"))) if a]
    if len(destination) <= 1:
        # One recipient: the tag's subscription, once, whatever the event lists.
        recipients = _listed(detail.get(recipients_field)) if recipients_field else []
        if recipients and isinstance(recipients[0], dict):
            base.failure_message = (text(recipients[0].get("diagnosticCode"))
                                    or text(recipients[0].get("status")))
        return expand(base, events)
    named = _listed(detail.get(recipients_field)) if recipients_field else []
    if not named:
        if kind in ("Send", "Reject", "Rendering Failure"):
            named = list(destination)  # the event is the whole message's
        else:
            base.problem = (f"SES {kind} event of a message sent to {len(destination)} "
                            "addresses does not say whose it is")
            return [base]
    out: list[Incoming] = []
    for recipient in named:
        address = text(recipient.get("emailAddress") if isinstance(recipient, dict)
                       else recipient)
        one = replace(base, subscription_id=address_id(address) if address else None,
                      external_id=None)
        if isinstance(recipient, dict):
            one.failure_message = (text(recipient.get("diagnosticCode"))
                                   or text(recipient.get("status")))
        out.extend(expand(one, events))
    return out


def _listed(value: object) -> list[Any]:
    return value if isinstance(value, list) else []


def address_id(address: str) -> str:
    """The subscription id msgtrail gives an address of an SES message sent to several."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, "mailto:" + address.strip().lower()))
