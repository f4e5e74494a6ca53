"""Provider webhooks on both configurations, with requests built and signed as each
provider builds them: stored, replayed, refused, dead-lettered, then exported."""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import func, select

from msgtrail import apps
from msgtrail.csv_schema import columns
from msgtrail.db.schema import activity_segments, connector_events, webhook_rejections
from msgtrail.files import open_store
from msgtrail.ingest import connections, intake, test_event
from msgtrail.ingest.connectors import SOURCES as SOURCES_BY_NAME
from msgtrail.runtime import retention
from msgtrail.testing.providers import (
    Call,
    Happened,
    Mailgun,
    OneSignal,
    Postmark,
    SendGrid,
    Ses,
    Twilio,
)
from msgtrail.testing.sns import SnsEndpoint
from msgtrail.vault import Vault
from tests.integration.conftest import InProcess

NOW = int(time.time())
T0 = NOW - 3600
SOURCES = ["onesignal", "onesignal-nested", "onesignal-documented", "sendgrid", "ses-v1", "ses-v2", "twilio",
           "postmark", "mailgun"]
# What a provider event means in the CSV: a bounce is also a failure.
IMPLIES = {"bounced": ("bounced", "failed")}


@pytest.fixture(scope="module")
def sns() -> Iterator[SnsEndpoint]:
    endpoint = SnsEndpoint()
    yield endpoint
    endpoint.stop()


@pytest.fixture
def hooks(api: InProcess, sns: SnsEndpoint) -> InProcess:
    # Certificates and SubscribeURLs come from the loopback stand-in for SNS (the
    # service reads its settings object on each request).
    api.settings.sns_host_pattern = sns.host_pattern
    api.settings.sns_ca_bundle = sns.ca_file
    api.settings.sns_issuer_pattern = sns.host_pattern
    return api


def provider(name: str, api: InProcess, sns: SnsEndpoint, app_id: str | None = None,
             key: str | None = None) -> Any:
    """A provider of that name, connected to the app (default: the test's app)."""
    made: Any = {
        "onesignal": lambda: OneSignal(api_key=key or api.key),
        "onesignal-nested": lambda: OneSignal(api_key=key or api.key, flat=False),
        "onesignal-documented": lambda: OneSignal(api_key=key or api.key, documented=True),
        "sendgrid": SendGrid, "twilio": Twilio, "postmark": Postmark, "mailgun": Mailgun,
        "ses-v1": lambda: Ses(sns, version="1"), "ses-v2": lambda: Ses(sns, version="2"),
    }[name]()
    if app_id and made.source == "ses":
        made.topic_arn += "-" + app_id  # each app its own topic
    with api.engine.begin() as conn:
        connections.connect(conn, Vault(api.settings), app_id or api.app_id, made.source,
                            **made.options())
    return made


def post(api: InProcess, call: Call) -> Any:
    # The test client sends the app's key by default; a provider sends only its own.
    headers = {"authorization": "", **{k.lower(): v for k, v in call.headers.items()}}
    return api.client.post(call.path, content=call.body, headers=headers)


def scenario(p: Any, message_id: str, a: str, b: str) -> list[Happened]:
    """Recipient a engages, recipient b fails: as far as the provider can say so."""
    failure = "bounced" if p.channel == "email" else "failed"
    reason = "30003" if p.source == "twilio" else "550 5.1.1 mailbox unknown"
    wanted = [(a, e, T0 + i) for i, e in enumerate(("sent", "delivered", "opened", "clicked"))]
    wanted += [(b, "sent", T0), (b, failure, T0 + 5)]
    return [Happened(e, message_id, sub, ts, reason if e == failure else None)
            for sub, e, ts in wanted if e in p.events]


def message_for(api: InProcess, p: Any) -> str:
    # OneSignal's messages are created by their first event.
    return str(uuid.uuid4()) if p.source == "onesignal" else api.create_message(p.channel)


def send(api: InProcess, p: Any, happened: list[Happened]) -> tuple[int, int]:
    accepted = rejected = 0
    for call in p.calls(api.app_id, happened, api.settings.resolved_public_url()):
        r = post(api, call)
        assert r.status_code == 200, r.text
        accepted += r.json()["accepted"]
        rejected += r.json()["rejected"]
    return accepted, rejected


def stored(api: InProcess) -> tuple[int, int]:
    """Events and rejections in the database: what 'nothing stored' is checked on."""
    with api.engine.connect() as conn:
        log = conn.execute(select(func.coalesce(func.sum(activity_segments.c.events), 0))
                           ).scalar_one()
        dead = conn.execute(select(func.count()).select_from(webhook_rejections)).scalar_one()
    return int(log), int(dead)


def iso(ts: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


@pytest.mark.parametrize("name", SOURCES)
def test_events_are_stored_once_and_export_with_the_right_rows(
        hooks: InProcess, sns: SnsEndpoint, name: str) -> None:
    p = provider(name, hooks, sns)
    message_id = message_for(hooks, p)
    a, b = str(uuid.uuid4()), str(uuid.uuid4())
    happened = scenario(p, message_id, a, b)
    received_from = iso(int(time.time()))
    accepted, rejected = send(hooks, p, happened)
    expected_events = sum(len(IMPLIES.get(h.event, (h.event,))) for h in happened)
    assert (accepted, rejected) == (expected_events, 0)
    send(hooks, p, happened)  # the provider retries everything: recorded once

    rows = hooks.export(message_id)
    assert list(rows[0]) == list(columns(p.channel))
    assert len(rows) == 2
    by_sub = {r["subscription_id"]: r for r in rows}
    for sub in (a, b):
        want: dict[str, str] = {}
        for h in happened:
            if h.subscription_id == sub:
                for event in IMPLIES.get(h.event, (h.event,)):
                    want[event] = iso(h.ts)
        got = {c: v for c, v in by_sub[sub].items() if c in want or
               (c not in ("subscription_id", "external_user_id", "device_type", "onesignal_id",
                          "failure_message") and v)}
        if p.source == "twilio":
            # Twilio's callbacks carry no event time: msgtrail records when it got them.
            assert set(got) == set(want), (sub, by_sub[sub])
            assert all(received_from <= t <= iso(int(time.time())) for t in got.values())
        else:
            assert got == want, (sub, by_sub[sub])
    failure = next(h for h in happened if h.reason)
    assert by_sub[b]["failure_message"] == failure.reason
    assert by_sub[a]["failure_message"] == ""
    if p.source == "onesignal":
        r = hooks.client.get(f"/notifications/{message_id}", params={"app_id": hooks.app_id})
        assert r.status_code == 200 and r.json()["name"] == "Spring sale"
        assert r.json()["target_channel"] == "push"


@pytest.mark.parametrize("name", SOURCES)
def test_forged_requests_are_refused_and_store_nothing(
        hooks: InProcess, sns: SnsEndpoint, name: str) -> None:
    p = provider(name, hooks, sns)
    message_id = message_for(hooks, p)
    [call, *_] = p.calls(hooks.app_id, scenario(p, message_id, str(uuid.uuid4()),
                                                str(uuid.uuid4())),
                         hooks.settings.resolved_public_url())
    before = stored(hooks)
    # The body changed after signing (the auth of Postmark and OneSignal does not
    # cover the body: for them, the credential itself is wrong).
    tampered = Call(call.path, dict(call.headers), call.body.replace(b"someone", b"someon3")
                    .replace(b"5550006", b"5550007"))
    if p.source in ("postmark", "onesignal"):
        tampered.headers["authorization"] = call.headers["authorization"][:-4] + "AAAA"
    if p.source == "ses":
        doc = json.loads(call.body)
        doc["Message"] = doc["Message"].replace("someone", "someon3")
        tampered = Call(call.path, call.headers, json.dumps(doc).encode())
    unsigned = Call(call.path, {k: v for k, v in call.headers.items()
                                if k.lower() not in ("authorization", "x-twilio-signature",
                                                     "x-twilio-email-event-webhook-signature")},
                    call.body)
    if p.source == "mailgun":
        # Mailgun signs timestamp + token, not the event: a replayed signature with
        # another token is the forgery to refuse.
        doc = json.loads(call.body)
        doc["signature"]["token"] = uuid.uuid4().hex
        tampered = Call(call.path, call.headers, json.dumps(doc).encode())
        doc = json.loads(call.body)
        doc["signature"]["signature"] = "0" * 64
        unsigned = Call(call.path, call.headers, json.dumps(doc).encode())
    if p.source == "ses":
        doc = json.loads(call.body)
        doc["Signature"] = base64.b64encode(b"\0" * 256).decode()
        unsigned = Call(call.path, call.headers, json.dumps(doc).encode())
    for bad in (tampered, unsigned):
        r = post(hooks, bad)
        assert r.status_code == 401, (bad.headers, r.text)
        assert r.json()["errors"]
    assert stored(hooks) == before
    assert post(hooks, call).status_code == 200  # the genuine request still goes in


@pytest.mark.parametrize("name", SOURCES)
def test_a_request_for_another_app_is_refused(hooks: InProcess, sns: SnsEndpoint,
                                              name: str) -> None:
    """Signed with app B's credential, sent to app A's URL (A has its own)."""
    with hooks.engine.begin() as conn:
        other, other_key = apps.create_app(conn, "other")
    provider(name, hooks, sns)  # app A's own credential
    p_other = provider(name, hooks, sns, app_id=other.app_id, key=other_key)
    message_id = message_for(hooks, p_other)
    [call, *_] = p_other.calls(other.app_id, scenario(p_other, message_id, str(uuid.uuid4()),
                                                      str(uuid.uuid4())),
                               hooks.settings.resolved_public_url())
    before = stored(hooks)
    to_a = call.path.replace(other.app_id, hooks.app_id)
    r = post(hooks, Call(to_a, call.headers, call.body))
    if p_other.source == "ses":
        # SNS signed it validly: what is wrong is whose topic it came from.
        assert r.status_code == 403, r.text
    else:
        assert r.status_code == 401, r.text
    assert stored(hooks) == before


def test_ses_refuses_a_topic_not_connected_and_confirms_its_own(
        hooks: InProcess, sns: SnsEndpoint) -> None:
    p = provider("ses-v1", hooks, sns)
    stranger = Ses(sns, topic_arn="arn:aws:sns:eu-west-1:999999999999:not-yours")
    message_id = hooks.create_message("email")
    happened = scenario(p, message_id, str(uuid.uuid4()), str(uuid.uuid4()))
    before = stored(hooks)
    for call in stranger.calls(hooks.app_id, happened, ""):
        r = post(hooks, call)
        assert r.status_code == 403 and "TopicArn" in r.json()["errors"][0]
    assert stored(hooks) == before

    for version in ("1", "2"):
        token = uuid.uuid4().hex
        confirm_url = f"{sns.origin}/confirm?Action=ConfirmSubscription&Token={token}"
        doc = sns.envelope("SubscriptionConfirmation", p.topic_arn, {
            "Message": "You have chosen to subscribe", "Token": token,
            "SubscribeURL": confirm_url}, version)
        assert post(hooks, p.call(hooks.app_id, doc)).status_code == 200
        assert f"/confirm?Action=ConfirmSubscription&Token={token}" in sns.requests
    # A confirmation from a topic not connected is not confirmed.
    token = uuid.uuid4().hex
    doc = sns.envelope("SubscriptionConfirmation", stranger.topic_arn, {
        "Message": "x", "Token": token, "SubscribeURL": f"{sns.origin}/confirm?Token={token}"})
    assert post(hooks, p.call(hooks.app_id, doc)).status_code == 403
    assert not any(token in path for path in sns.requests)


def test_ses_certificate_only_from_an_sns_host(hooks: InProcess, sns: SnsEndpoint) -> None:
    p = provider("ses-v1", hooks, sns)
    message_id = hooks.create_message("email")
    [call, *_] = p.calls(hooks.app_id, scenario(p, message_id, str(uuid.uuid4()),
                                                str(uuid.uuid4())), "")
    doc = json.loads(call.body)
    doc["SigningCertURL"] = "http://127.0.0.2:1/cert.pem"
    before = stored(hooks)
    r = post(hooks, Call(call.path, call.headers, json.dumps(doc).encode()))
    assert r.status_code == 401 and "not an SNS host" in r.json()["errors"][0]
    assert stored(hooks) == before


@pytest.mark.parametrize(("cert", "why"), [
    ("expired", "not valid now"), ("foreign", "not trusted"), ("selfsigned", "not trusted")])
def test_ses_refuses_a_certificate_sns_did_not_issue(hooks: InProcess, sns: SnsEndpoint,
                                                      cert: str, why: str) -> None:
    """Signed with the key the certificate names, from the SNS host: still refused when
    the certificate is expired, issued for another name, or chains to no trusted root."""
    p = provider("ses-v2", hooks, sns)
    message_id = hooks.create_message("email")
    happened = scenario(p, message_id, str(uuid.uuid4()), str(uuid.uuid4()))
    before = stored(hooks)
    for version in ("1", "2"):
        doc = sns.envelope("Notification", p.topic_arn,
                           {"Message": json.dumps(p.event(happened[0]))}, version, cert)
        doc["SigningCertURL"] += f"?{uuid.uuid4()}"  # not one remembered as verified
        r = post(hooks, p.call(hooks.app_id, doc))
        assert r.status_code == 401 and why in r.json()["errors"][0], r.text
    assert stored(hooks) == before


def test_ses_certificate_without_its_issuer_is_completed_from_its_ca(
        hooks: InProcess, sns: SnsEndpoint) -> None:
    p = provider("ses-v1", hooks, sns)
    message_id = hooks.create_message("email")
    happened = scenario(p, message_id, str(uuid.uuid4()), str(uuid.uuid4()))
    doc = sns.envelope("Notification", p.topic_arn,
                       {"Message": json.dumps(p.event(happened[0]))}, "1", "aia")
    # A URL of this test's own: verified keys are remembered by URL.
    doc["SigningCertURL"] += f"?{uuid.uuid4()}"
    hooks.settings.sns_issuer_pattern = "^$"  # the CA's host not allowed: no chain
    r = post(hooks, p.call(hooks.app_id, doc))
    assert r.status_code == 401 and "not trusted" in r.json()["errors"][0]
    hooks.settings.sns_issuer_pattern = sns.host_pattern
    r = post(hooks, p.call(hooks.app_id, doc))
    assert r.status_code == 200 and r.json() == {"accepted": 1, "rejected": 0}, r.text
    assert "/issuer.der" in sns.requests


def test_mailgun_refuses_a_stale_signature(hooks: InProcess, sns: SnsEndpoint) -> None:
    p = provider("mailgun", hooks, sns)
    message_id = hooks.create_message("email")
    happened = scenario(p, message_id, str(uuid.uuid4()), str(uuid.uuid4()))
    p.signed_at = int(time.time()) - 301
    before = stored(hooks)
    r = post(hooks, p.calls(hooks.app_id, happened, "")[0])
    assert r.status_code == 401 and "replay" in r.json()["errors"][0]
    assert stored(hooks) == before
    p.signed_at = int(time.time()) - 250  # inside the window
    assert post(hooks, p.calls(hooks.app_id, happened, "")[0]).status_code == 200


@pytest.mark.parametrize("name", SOURCES)
def test_unattributable_events_are_kept_with_their_reason(
        hooks: InProcess, sns: SnsEndpoint, name: str) -> None:
    p = provider(name, hooks, sns)
    message_id = message_for(hooks, p)
    sub = str(uuid.uuid4())
    first = p.events[0]
    no_ids = [Happened(first, None, None, T0)]
    unknown = [Happened(first, str(uuid.uuid4()) if p.source != "onesignal" else "not-a-uuid",
                        sub, T0)]
    calls = [*p.calls(hooks.app_id, no_ids, hooks.settings.resolved_public_url()),
             *p.calls(hooks.app_id, unknown, hooks.settings.resolved_public_url())]
    log_before, _ = stored(hooks)
    for _ in range(2):  # a retry of the same events is kept once
        for call in calls:
            r = post(hooks, call)
            assert r.status_code == 200 and r.json()["accepted"] == 0, r.text
            assert r.json()["rejected"] >= 1
    assert stored(hooks)[0] == log_before
    page = hooks.client.get(f"/apps/{hooks.app_id}/webhook_rejections").json()
    assert page["total_count"] == 2, page
    reasons = sorted(r["reason"] for r in page["rejections"])
    assert reasons[0].startswith("no ") or reasons[1].startswith("no "), reasons
    assert {r["source"] for r in page["rejections"]} == {p.source}
    assert all(isinstance(r["event"], dict) for r in page["rejections"])
    if p.source != "onesignal":
        assert any("no message" in r for r in reasons), reasons
    # The message itself is untouched.
    if p.source != "onesignal":
        assert hooks.export(message_id) == []


def test_channel_mismatch_is_dead_lettered(hooks: InProcess, sns: SnsEndpoint) -> None:
    p = provider("sendgrid", hooks, sns)
    sms_message = hooks.create_message("sms")
    r = post(hooks, p.calls(hooks.app_id, [Happened("opened", sms_message, str(uuid.uuid4()),
                                                    T0)], "")[0])
    assert r.json() == {"accepted": 0, "rejected": 1}
    page = hooks.client.get(f"/apps/{hooks.app_id}/webhook_rejections",
                            params={"source": "sendgrid"}).json()
    assert "channel mismatch" in page["rejections"][0]["reason"]


def test_a_batch_is_all_or_nothing_and_unparseable_is_400(hooks: InProcess,
                                                          sns: SnsEndpoint) -> None:
    p = provider("sendgrid", hooks, sns)
    message_id = hooks.create_message("email")
    good = p.event(Happened("sent", message_id, str(uuid.uuid4()), T0))
    before = stored(hooks)
    body = json.dumps([good, "not an event"]).encode()
    r = post(hooks, p.signed(hooks.app_id, body))
    assert r.status_code == 400 and r.json()["errors"][0].startswith("[1]")
    r = post(hooks, p.signed(hooks.app_id, b"{not json"))
    assert r.status_code == 400 and "JSON" in r.json()["errors"][0]
    assert stored(hooks) == before


@pytest.fixture
def no_lookup_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    """Connections read afresh on every request (set before the app is built)."""
    monkeypatch.setenv("MSGTRAIL_WEBHOOK_CACHE_SECONDS", "0")


def test_sources_not_connected_or_disconnected_take_nothing(
        no_lookup_cache: None, hooks: InProcess, sns: SnsEndpoint) -> None:
    p = SendGrid()
    message_id = hooks.create_message("email")
    call = p.calls(hooks.app_id, [Happened("sent", message_id, str(uuid.uuid4()), T0)], "")[0]
    assert post(hooks, call).status_code == 404
    provider("sendgrid", hooks, sns)  # another key: still refused
    assert post(hooks, call).status_code == 401
    with hooks.engine.begin() as conn:
        connections.connect(conn, Vault(hooks.settings), hooks.app_id, "sendgrid",
                            **p.options())
    assert post(hooks, call).status_code == 200
    with hooks.engine.begin() as conn:
        assert connections.disconnect(conn, hooks.app_id, "sendgrid")
    assert post(hooks, call).status_code == 404


@pytest.mark.parametrize("prefix", ["", "/api/v1"])
def test_an_unknown_source_is_404(hooks: InProcess, prefix: str) -> None:
    before = stored(hooks)
    for source in ("nosuch", "SendGrid", "sendgrid%00", "x" * 300):
        r = hooks.client.post(f"{prefix}/webhooks/{source}/{hooks.app_id}", content=b"{}")
        assert r.status_code == 404, (source, r.text)
        assert r.json()["errors"][0].startswith("No webhook source")
    assert stored(hooks) == before


def test_sendgrid_refuses_a_replayed_signature(hooks: InProcess, sns: SnsEndpoint) -> None:
    p = provider("sendgrid", hooks, sns)
    message_id = hooks.create_message("email")
    body = json.dumps([p.event(Happened("sent", message_id, str(uuid.uuid4()), T0))]).encode()
    before = stored(hooks)
    for signed_at in (int(time.time()) - 301, 1_600_000_000, int(time.time()) + 301):
        r = post(hooks, p.signed(hooks.app_id, body, str(signed_at)))
        assert r.status_code == 401 and "replay" in r.json()["errors"][0], r.text
    assert stored(hooks) == before
    inside = str(int(time.time()) - 250)
    assert post(hooks, p.signed(hooks.app_id, body, inside)).json() == {
        "accepted": 1, "rejected": 0}


@pytest.mark.parametrize("name", SOURCES)
def test_webhooks_are_taken_under_api_v1_too(hooks: InProcess, sns: SnsEndpoint,
                                              name: str) -> None:
    p = provider(name, hooks, sns)
    message_id = message_for(hooks, p)
    happened = scenario(p, message_id, str(uuid.uuid4()), str(uuid.uuid4()))
    calls = p.calls(hooks.app_id, happened, hooks.settings.resolved_public_url() + "/api/v1")
    for call in calls:
        path = call.path if call.path.startswith("/api/v1") else "/api/v1" + call.path
        r = post(hooks, Call(path, call.headers, call.body))
        assert r.status_code == 200 and r.json()["rejected"] == 0, r.text
    assert len(hooks.export(message_id)) == 2


def test_credentials_are_sealed_at_rest(hooks: InProcess, sns: SnsEndpoint) -> None:
    p = provider("twilio", hooks, sns)
    with hooks.engine.connect() as conn:
        stored_secret = conn.exec_driver_sql("SELECT secret FROM connections").scalar_one()
    assert p.auth_token not in stored_secret
    assert Vault(hooks.settings).open(stored_secret) == {"auth_token": p.auth_token}


def test_rejections_go_with_the_activity_retention_window(hooks: InProcess,
                                                         sns: SnsEndpoint) -> None:
    p = provider("mailgun", hooks, sns)
    r = post(hooks, p.calls(hooks.app_id, [Happened("delivered", None, None, T0)], "")[0])
    assert r.json()["rejected"] == 1
    received = int(time.time())
    store = open_store(hooks.settings.resolved_storage_url())
    window = hooks.settings.activity_retention_days * 86400
    assert retention.purge(hooks.engine, store, hooks.settings,
                           now=received + window - 60)["rejections"] == 0
    assert retention.purge(hooks.engine, store, hooks.settings,
                           now=received + window + 60)["rejections"] == 1
    assert hooks.client.get(f"/apps/{hooks.app_id}/webhook_rejections").json()[
        "total_count"] == 0


def test_provider_text_with_nul_is_stored_without_it(hooks: InProcess, sns: SnsEndpoint) -> None:
    provider("onesignal", hooks, sns)
    message_id, sub = str(uuid.uuid4()), str(uuid.uuid4())
    body = {"event.kind": "message.push.failed", "event.timestamp": str(T0),
            "message.id": message_id, "message.name": "N\x00" + "n" * 600,
            "event.subscription_id": sub, "event.data.failure_reason": "bad\x00token"}
    r = hooks.client.post(f"/webhooks/onesignal/{hooks.app_id}", json=body)
    assert r.json() == {"accepted": 1, "rejected": 0}, r.text
    [row] = hooks.export(message_id)
    assert row["failure_message"] == "badtoken" and row["failed"] == iso(T0)
    doc = hooks.client.get(f"/notifications/{message_id}", params={"app_id": hooks.app_id})
    assert doc.json()["name"] == "N" + "n" * 499


def test_a_blocked_sendgrid_bounce_then_a_delivery_is_not_a_failure(
        hooks: InProcess, sns: SnsEndpoint) -> None:
    p = provider("sendgrid", hooks, sns)
    message_id = hooks.create_message("email")
    retried, bounced = str(uuid.uuid4()), str(uuid.uuid4())

    def sg(kind: str, sub: str, ts: int, **extra: Any) -> dict[str, Any]:
        return {**p.event(Happened("sent", message_id, sub, ts)), "event": kind, **extra}

    body = json.dumps([
        sg("processed", retried, T0), sg("processed", bounced, T0),
        sg("bounce", retried, T0 + 60, type="blocked", reason="421 try later", status="4.0.0"),
        sg("delivered", retried, T0 + 600),
        sg("bounce", bounced, T0 + 60, type="bounce", reason="550 no such user", status="5.1.1"),
    ]).encode()
    assert post(hooks, p.signed(hooks.app_id, body)).json() == {"accepted": 6, "rejected": 0}
    doc = hooks.client.get(f"/notifications/{message_id}",
                           params={"app_id": hooks.app_id}).json()
    assert (doc["successful"], doc["failed"], doc["received"]) == (1, 1, 1), doc
    rows = {r["subscription_id"]: r for r in hooks.export(message_id)}
    # The export keeps what happened: the refusal and the delivery after it.
    assert (rows[retried]["failed"], rows[retried]["delivered"], rows[retried]["bounced"],
            rows[retried]["failure_message"]) == (iso(T0 + 60), iso(T0 + 600), "",
                                                  "421 try later")
    assert (rows[bounced]["failed"], rows[bounced]["bounced"]) == (iso(T0 + 60), iso(T0 + 60))


def test_a_credential_sealed_by_another_key_is_503_not_500(api: InProcess) -> None:
    """A server started with the wrong MSGTRAIL_SECRET_KEY (a restore without its key)
    cannot open the credentials: that is the server's trouble, said as such."""
    from cryptography.fernet import Fernet

    other = api.settings.model_copy(update={"secret_key": Fernet.generate_key().decode()})
    made = Postmark()
    with api.engine.begin() as conn:
        connections.connect(conn, Vault(other), api.app_id, "postmark", **made.options())
    message_id = api.create_message(channel="email")
    [call] = made.calls(api.app_id, [Happened("delivered", message_id, str(uuid.uuid4()), T0)],
                        str(api.client.base_url))
    r = post(api, call)
    assert r.status_code == 503 and r.headers["retry-after"] == "5"
    assert "MSGTRAIL_SECRET_KEY" in r.json()["errors"][0]


@pytest.mark.parametrize("name", ["sendgrid", "ses-v1", "twilio", "postmark", "mailgun",
                                  "onesignal"])
def test_each_connector_keeps_its_last_events_with_their_outcome(
        hooks: InProcess, sns: SnsEndpoint, name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Its page lists a connector's last events, newest first, each recorded or
    refused with why; older ones are deleted as new ones come."""
    monkeypatch.setattr(intake, "RECENT_EVENTS", 3)
    p = provider(name, hooks, sns)
    message_id = message_for(hooks, p)
    sub = str(uuid.uuid4())
    first = p.events[0]
    happened = [Happened(first, message_id, sub, T0 + i) for i in range(4)]
    refused = Happened(first, None, None, T0 + 9)
    assert send(hooks, p, happened) == (4, 0)
    send(hooks, p, [refused])
    app = hooks.service.app_for_key(hooks.key)
    assert app is not None
    recent = hooks.service.connector_events(app, p.source)
    assert [e["outcome"] for e in recent[1:]] == [intake.RECORDED] * 2
    assert recent[0]["outcome"].startswith("no ") and recent[0]["message_id"] is None
    assert recent[1]["message_id"] == message_id and recent[1]["event"] == first
    with hooks.engine.connect() as conn:  # older ones deleted, other sources untouched
        assert conn.execute(select(func.count()).select_from(connector_events)).scalar() == 3
    assert all(hooks.service.connector_events(app, s) == [] for s in ("twilio", "mailgun")
               if s != p.source)


@pytest.mark.parametrize("name", test_event.SIGNED_HERE)
def test_a_test_event_is_verified_listed_and_never_recorded(
        hooks: InProcess, sns: SnsEndpoint, name: str) -> None:
    """A connector's test event, signed as msgtrail signs it with the stored credential,
    passes the connector's own check, is listed among its last events, and is neither
    recorded nor rejected; the same request with another credential is refused."""
    p = provider(name, hooks, sns)
    app = hooks.service.app_for_key(hooks.key)
    assert app is not None
    with hooks.engine.connect() as conn:
        credential = connections.credential(conn, Vault(hooks.settings), app, p.source)
    url = connections.webhook_url(hooks.settings.resolved_public_url(), p.source,
                                  hooks.app_id, credential)
    ids = {"msgtrail_message_id": intake.TEST_MESSAGE_ID,
           "msgtrail_subscription_id": intake.TEST_MESSAGE_ID}
    before = stored(hooks)
    target, headers, body = SOURCES_BY_NAME[p.source].test_event(credential, url, ids, NOW)
    path = target.removeprefix(hooks.settings.resolved_public_url())
    r = post(hooks, Call(path, headers, body))
    assert r.status_code == 200 and r.json() == {"accepted": 0, "rejected": 0}, r.text
    assert stored(hooks) == before
    [listed] = hooks.service.connector_events(app, p.source)
    assert listed["outcome"] == intake.TEST_EVENT and listed["event"] == "delivered"
    forged = {k: "forged-" + str(v) for k, v in credential.items()}
    _, headers, body = SOURCES_BY_NAME[p.source].test_event(forged, url, ids, NOW)
    assert post(hooks, Call(path, headers, body)).status_code == 401


def test_a_test_event_that_cannot_reach_the_public_url_says_so() -> None:
    reached, said = test_event.send("http://127.0.0.1:9", "postmark", str(uuid.uuid4()),
                                    {"password": "x"})
    assert not reached and "could not reach http://127.0.0.1:9" in said
    assert "MSGTRAIL_PUBLIC_URL" in said
