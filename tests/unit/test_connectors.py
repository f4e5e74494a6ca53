"""The connectors against the providers' own published test vectors, and their event
tables (pure logic: no server, no database)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from msgtrail.errors import BadRequest, Unauthorized
from msgtrail.ingest.connectors import mailgun, onesignal, postmark, sendgrid, ses, twilio
from msgtrail.ingest.connectors.base import Context, WebhookRequest

CTX = Context(app_id="app", max_age_seconds=300, sns_host_pattern="^$",
              key_owner=lambda key: None, fetch=lambda url: b"")

# sendgrid-python, test/unit/test_eventwebhook.py
SG_PUBLIC_KEY = ("MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE83T4O/n84iotIvIW4mdBgQ/7dAfSmpqIM8kF9mN1fl"
                 "pVKS3GRqe62gw+2fNNRaINXvVpiglSI8eNEc6wEA3F+g==")
SG_SIGNATURE = ("MEUCIGHQVtGj+Y3LkG9fLcxf3qfI10QysgDWmMOVmxG0u6ZUAiEAyBiXDWzM+uOe5W0JuG+luQAbPIqH"
                "h89M15TluLtEZtM=")
SG_TIMESTAMP = "1600112502"
SG_PAYLOAD = json.dumps([{
    "email": "hello@world.com", "event": "dropped", "reason": "Bounced Address",
    "sg_event_id": "ZHJvcC0xMDk5NDkxOS1MUnpYbF9OSFN0T0doUTRrb2ZTbV9BLTA",
    "sg_message_id": "LRzXl_NHStOGhQ4kofSm_A.filterdrecv-p3mdw1-756b745b58-kmzbl-18-5F5FC76C-9.0",
    "smtp-id": "<LRzXl_NHStOGhQ4kofSm_A@ismtpd0039p1iad1.sendgrid.net>",
    "timestamp": 1600112492}], sort_keys=True, separators=(",", ":")) + "\r\n"

# twilio-python, tests/unit/test_request_validator.py
TW_TOKEN = "12345"
TW_URL = "https://mycompany.com/myapp.php?foo=1&bar=2"
TW_PARAMS = {"CallSid": "CA1234567890ABCDE", "Caller": "+14158675309", "Digits": "1234",
             "From": "+14158675309", "To": "+18005551212"}
TW_SIGNATURE = "RSOYDt4T1cUTdK1PDd93/VVr8B8="


def req(body: bytes | str, headers: dict[str, str] | None = None, url: str = "",
        query: dict[str, str] | None = None, now: int = 1_700_000_000) -> WebhookRequest:
    data = body.encode() if isinstance(body, str) else body
    return WebhookRequest(data, headers or {}, url, query or {}, now)


def test_sendgrid_verifies_sendgrid_pythons_vector() -> None:
    cred = sendgrid.credential(public_key=SG_PUBLIC_KEY)
    headers = {sendgrid.SIGNATURE: SG_SIGNATURE, sendgrid.TIMESTAMP: SG_TIMESTAMP}
    signed_at = int(SG_TIMESTAMP)
    sendgrid.verify(req(SG_PAYLOAD, headers, now=signed_at + 10), cred, CTX)
    for body, ts in (("payload", SG_TIMESTAMP), (SG_PAYLOAD, "timestamp"),
                     (SG_PAYLOAD.rstrip(), SG_TIMESTAMP)):
        with pytest.raises(Unauthorized):
            sendgrid.verify(req(body, {**headers, sendgrid.TIMESTAMP: ts}, now=signed_at),
                            cred, CTX)
    other = sendgrid.credential(public_key=(
        "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEqTxd43gyp8IOEto2LdIfjRQrIbsd4SXZkLW6jDutdhXSJCWHw8"
        "REntlo7aNDthvj+y7GjUuFDb/R1NGe1OPzpA=="))
    with pytest.raises(Unauthorized):
        sendgrid.verify(req(SG_PAYLOAD, headers, now=signed_at), other, CTX)
    [event] = sendgrid.parse(req(SG_PAYLOAD), CTX)
    assert (event.event, event.failure_message, event.problem) == (
        "suppressed", "Bounced Address", None)


def test_sendgrid_refuses_a_signature_outside_the_replay_window() -> None:
    cred = sendgrid.credential(public_key=SG_PUBLIC_KEY)
    headers = {sendgrid.SIGNATURE: SG_SIGNATURE, sendgrid.TIMESTAMP: SG_TIMESTAMP}
    signed_at = int(SG_TIMESTAMP)
    for now in (signed_at - 300, signed_at + 300):
        sendgrid.verify(req(SG_PAYLOAD, headers, now=now), cred, CTX)
    # The vector's own signature, replayed long after (or before) it was made.
    for now in (signed_at + 301, signed_at - 301, 1_700_000_000):
        with pytest.raises(Unauthorized, match="replay"):
            sendgrid.verify(req(SG_PAYLOAD, headers, now=now), cred, CTX)


def test_sendgrid_refuses_a_key_that_is_not_p256() -> None:
    with pytest.raises(BadRequest):
        sendgrid.credential(public_key="bm90IGEga2V5")


def test_twilio_signature_matches_twilio_pythons_vector() -> None:
    params = list(TW_PARAMS.items())
    assert twilio.signature(TW_TOKEN, TW_URL, params) == TW_SIGNATURE
    assert twilio.valid(TW_TOKEN, TW_URL, params, TW_SIGNATURE)
    # Twilio signs the URL with or without the default port: both forms verify.
    assert twilio.valid(TW_TOKEN, "https://mycompany.com:443/myapp.php?foo=1&bar=2", params,
                        TW_SIGNATURE)
    assert not twilio.valid(TW_TOKEN, TW_URL + "&x=1", params, TW_SIGNATURE)
    assert not twilio.valid("54321", TW_URL, params, TW_SIGNATURE)
    assert not twilio.valid(TW_TOKEN, TW_URL, [*params[:-1], ("To", "+1")], TW_SIGNATURE)


def test_twilio_repeated_parameters_match_twilio_pythons_vector() -> None:
    # twilio-python: test_validate_with_array_and_duplicates (auth token 12345)
    params = [("Sid", "CA123"), ("SidAccount", "AC123"), ("Digits", "5678"),
              ("Digits", "1234"), ("Digits", "1234")]
    assert twilio.signature(TW_TOKEN, TW_URL, params) == "IK+Dwps556ElfBT0I3Rgjkr1wJU="


@pytest.mark.parametrize(("status", "event"), [
    ("sent", "sent"), ("delivered", "delivered"), ("undelivered", "failed"),
    ("failed", "failed"), ("queued", None), ("sending", None), ("accepted", None)])
def test_twilio_statuses(status: str, event: str | None) -> None:
    body = f"MessageSid=SM1&MessageStatus={status}&ErrorCode=30003"
    got = twilio.parse(req(body, query={"msgtrail_message_id": "m"}), CTX)
    assert [g.event for g in got] == ([event] if event else [])
    if event == "failed":
        assert got[0].failure_message == "30003" and got[0].message_id == "m"


def _sendgrid(kind: str) -> list[Any]:
    return [i.event for i in sendgrid.parse(req(json.dumps([{"event": kind}])), CTX)]


@pytest.mark.parametrize(("kind", "events"), [
    ("processed", ["sent"]), ("delivered", ["delivered"]), ("open", ["opened"]),
    ("click", ["clicked"]), ("bounce", ["bounced", "failed"]), ("dropped", ["suppressed"]),
    ("spamreport", ["reported_spam"]), ("unsubscribe", ["unsubscribed"]),
    ("group_unsubscribe", ["unsubscribed"]), ("deferred", [])])
def test_sendgrid_events(kind: str, events: list[str]) -> None:
    assert _sendgrid(kind) == events


@pytest.mark.parametrize(("kind", "events"), [
    ("message.push.received", ["delivered"]), ("message.push.sent", ["sent"]),
    ("message.email.hardbounced", ["bounced", "failed"]),
    ("message.email.bounced", ["bounced", "failed"]),
    ("message.email.supressed", ["suppressed"]), ("message.email.suppressed", ["suppressed"]),
    ("message.email.reported_as_spam", ["reported_spam"]),
    ("message.sms.undelivered", ["failed"]), ("message.iam.displayed", [None])])
def test_onesignal_kinds_old_and_new_spellings(kind: str, events: list[str | None]) -> None:
    got = onesignal.parse(req(json.dumps({"event.kind": kind, "message.id": "m"})), CTX)
    assert [g.event for g in got] == events
    if events == [None]:
        assert got[0].problem and "not recorded" in got[0].problem


def test_onesignal_flat_and_nested_bodies_read_the_same() -> None:
    flat = {"event.kind": "message.push.failed", "event.id": "e1", "event.timestamp": "1700000000",
            "message.id": "m", "message.name": "n", "event.subscription_id": "s",
            "event.onesignal_id": "o", "event.external_id": "x",
            "event.data.failure_reason": "expired token"}
    nested = {"event": {"kind": "message.push.failed", "id": "e1", "timestamp": 1700000000,
                        "subscription_id": "s", "onesignal_id": "o", "external_id": "x",
                        "data": {"failure_reason": "expired token"}},
              "message": {"id": "m", "name": "n"}}
    # OneSignal's documented example body: the same fields under two headings, with
    # every other field it lists rendered empty.
    documented = {
        "Event Data": {**{k: v for k, v in flat.items() if k.startswith("event.")},
                       "event.datetime": "2023-11-14T22:13:20.000Z", "event.app_id": "a",
                       "event.subscription_device_type": "", "event.data.page_name": "",
                       "event.data.page_id": "", "event.data.target_name": "",
                       "event.data.target_id": ""},
        "Message Data": {"message.id": "m", "message.name": "n", "message.title": "",
                         "message.contents": "", "template_id": "", "message.template_id": "",
                         "message.url": "", "message.app_url": "", "message.web_url": ""}}
    a, b, c = (onesignal.parse(req(json.dumps(d)), CTX)[0] for d in (flat, nested, documented))
    assert a.__dict__ | {"raw": None} == b.__dict__ | {"raw": None}
    assert a.__dict__ | {"raw": None} == c.__dict__ | {"raw": None}
    assert (a.channel, a.ts, a.failure_message, a.message_name) == (
        "push", 1_700_000_000, "expired token", "n")


def test_ses_bounces_transient_ones_are_not_events() -> None:
    def notification(event: dict[str, Any]) -> WebhookRequest:
        return req(json.dumps({"Type": "Notification", "Message": json.dumps(event)}))

    mail = {"timestamp": "2026-01-01T00:00:00.000Z", "destination": ["a@x", "b@x"],
            "tags": {"msgtrail_message_id": ["m"], "msgtrail_subscription_id": ["s"]}}
    bounce = {"eventType": "Bounce", "mail": mail, "bounce": {
        "bounceType": "Permanent", "timestamp": "2026-01-01T00:00:05.000Z",
        "bouncedRecipients": [{"emailAddress": "a@x", "diagnosticCode": "550 unknown"},
                              {"emailAddress": "b@x", "status": "5.1.1"}]}}
    got = ses.parse(notification(bounce), CTX)
    assert [(g.event, g.failure_message) for g in got] == [
        ("bounced", "550 unknown"), ("failed", "550 unknown"), ("bounced", "5.1.1"),
        ("failed", "5.1.1")]
    a, b = ses.address_id("a@x"), ses.address_id("b@x")
    assert [(g.message_id, g.subscription_id, g.ts) for g in got] == [
        ("m", a, 1767225605), ("m", a, 1767225605), ("m", b, 1767225605),
        ("m", b, 1767225605)]
    bounce["bounce"]["bounceType"] = "Transient"
    assert ses.parse(notification(bounce), CTX) == []
    assert ses.parse(notification({"eventType": "DeliveryDelay", "mail": mail}), CTX) == []


def test_postmark_and_mailgun_transient_failures_are_not_events() -> None:
    soft = {"RecordType": "Bounce", "Type": "SoftBounce", "BouncedAt": "2026-01-01T00:00:00Z"}
    assert postmark.parse(req(json.dumps(soft)), CTX) == []
    temporary = {"signature": {}, "event-data": {"event": "failed", "severity": "temporary"}}
    assert mailgun.parse(req(json.dumps(temporary)), CTX) == []
    suppressed = {"signature": {}, "event-data": {
        "event": "failed", "severity": "permanent", "reason": "suppress-bounce"}}
    assert [e.event for e in mailgun.parse(req(json.dumps(suppressed)), CTX)] == ["suppressed"]


def _ses(event: dict[str, Any]) -> list[Any]:
    return ses.parse(req(json.dumps({"Type": "Notification", "Message": json.dumps(event)})),
                     CTX)


def test_ses_records_each_recipient_a_notification_names() -> None:
    mail = {"timestamp": "2026-01-01T00:00:00.000Z",
            "destination": ["A@x.example", "b@x.example", "c@x.example"],
            "tags": {"msgtrail_message_id": ["m"], "msgtrail_subscription_id": ["s"],
                     "msgtrail_external_id": ["u"]}}
    ids = [ses.address_id(a) for a in ("a@x.example", "b@x.example", "c@x.example")]
    assert len(set(ids)) == 3 and ses.address_id(" A@X.example") == ids[0]
    sent = _ses({"eventType": "Send", "mail": mail, "send": {}})
    assert [(g.event, g.subscription_id, g.external_id) for g in sent] == [
        ("sent", i, None) for i in ids]
    delivered = _ses({"eventType": "Delivery", "mail": mail, "delivery": {
        "timestamp": "2026-01-01T00:00:03.000Z", "recipients": ["b@x.example"]}})
    assert [(g.event, g.subscription_id, g.ts) for g in delivered] == [
        ("delivered", ids[1], 1767225603)]
    complaint = _ses({"eventType": "Complaint", "mail": mail, "complaint": {
        "complainedRecipients": [{"emailAddress": "c@x.example"}, {"emailAddress": "a@x.example"}]}})
    assert [(g.event, g.subscription_id) for g in complaint] == [
        ("reported_spam", ids[2]), ("reported_spam", ids[0])]
    rejected = _ses({"eventType": "Reject", "mail": mail, "reject": {"reason": "Bad content"}})
    assert [(g.event, g.subscription_id, g.failure_message) for g in rejected] == [
        ("failed", i, "Bad content") for i in ids]
    # An open names nobody: with several addresses, it cannot be put on one of them.
    [opened] = _ses({"eventType": "Open", "mail": mail, "open": {}})
    assert opened.problem and "3 addresses" in opened.problem
    # One address: the tag's subscription and external id, as before.
    one = {**mail, "destination": ["a@x.example"]}
    [alone] = _ses({"eventType": "Delivery", "mail": one, "delivery": {
        "recipients": ["a@x.example"]}})
    assert (alone.subscription_id, alone.external_id) == ("s", "u")
    assert [g.subscription_id for g in _ses({"eventType": "Open", "mail": one})] == ["s"]


def test_mailgun_rejected_is_a_failure_with_its_reason() -> None:
    body = {"signature": {}, "event-data": {
        "event": "rejected", "id": "r1", "timestamp": 1_700_000_000.5,
        "reject": {"reason": "hardfail", "description": "Not delivering to a bounced address"},
        "user-variables": {"msgtrail_message_id": "m", "msgtrail_subscription_id": "s"}}}
    [got] = mailgun.parse(req(json.dumps(body)), CTX)
    assert (got.event, got.failure_message, got.problem, got.ts) == (
        "failed", "Not delivering to a bounced address", None, 1_700_000_000)
    del body["event-data"]["reject"]["description"]  # type: ignore[attr-defined]
    [got] = mailgun.parse(req(json.dumps(body)), CTX)
    assert got.failure_message == "hardfail"


def test_sendgrid_blocked_bounce_is_a_failure_not_a_bounce() -> None:
    blocked = {"event": "bounce", "type": "blocked", "reason": "421 try again later",
               "status": "4.0.0", "timestamp": 1_700_000_000}
    [got] = sendgrid.parse(req(json.dumps([blocked])), CTX)
    assert (got.event, got.failure_message) == ("failed", "421 try again later")
    hard = {**blocked, "type": "bounce", "reason": "550 no such user"}
    assert [g.event for g in sendgrid.parse(req(json.dumps([hard])), CTX)] == [
        "bounced", "failed"]


def test_sns_roots_leave_out_what_cannot_be_parsed(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import ssl

    import trustme

    from msgtrail.errors import Unavailable
    from msgtrail.ingest.connectors import sns

    bundle = tmp_path / "roots.pem"
    bundle.write_bytes(b"-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydA==\n-----END CERTIFICATE-----\n"
                       + trustme.CA().cert_pem.bytes())
    assert sns._roots(str(bundle)) is not None
    empty = tmp_path / "empty.pem"
    empty.write_bytes(b"-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydA==\n-----END CERTIFICATE-----\n")
    with pytest.raises(Unavailable):
        sns._roots(str(empty))
    with pytest.raises(Unavailable):
        sns._roots(str(tmp_path / "missing.pem"))
    # The system's bundle, which the service trusts by default, loads.
    assert sns._roots(str(ssl.get_default_verify_paths().cafile)) is not None
