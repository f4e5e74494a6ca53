"""Messages through OneSignal's official Python SDK and plain HTTP."""

import uuid

import onesignal
import pytest
from onesignal.model.language_string_map import LanguageStringMap
from onesignal.model.notification import Notification

from tests.helpers import create_message, event, send_events


def test_sdk_create_get_and_list(server, app_creds) -> None:
    api = server.sdk(app_creds)
    created = api.create_notification(Notification(
        app_id=app_creds.app_id, name="Welcome", contents=LanguageStringMap(en="Hi there"),
        target_channel="push", headings=LanguageStringMap(en="Hello")))
    uuid.UUID(created.id)

    fetched = api.get_notification(app_creds.app_id, created.id)
    assert fetched.id == created.id
    assert fetched.target_channel == "push"
    assert fetched.contents["en"] == "Hi there"
    assert (fetched.successful, fetched.failed, fetched.converted, fetched.remaining) == (0, 0, 0, 0)

    second = api.create_notification(Notification(
        app_id=app_creds.app_id, name="Digest", contents=LanguageStringMap(en="News"),
        target_channel="email", email_subject="News"))
    page = api.get_notifications(app_creds.app_id, limit=1)
    assert page.total_count == 2
    assert [n.id for n in page.notifications] == [second.id]
    page = api.get_notifications(app_creds.app_id, limit=1, offset=1)
    assert [n.id for n in page.notifications] == [created.id]


def test_counters_come_from_activity(server, app_creds) -> None:
    with server.client(app_creds) as client:
        message_id = create_message(client, app_creds, "push")
        subs = [str(uuid.uuid4()) for _ in range(10)]
        events = [event(s, "sent", device_type="iOS" if i < 4 else "Android")
                  for i, s in enumerate(subs)]
        events += [event(s, "delivered") for s in subs[:8]]
        events += [event(s, "failed", failure_message="NotRegistered") for s in subs[8:]]
        events += [event(s, "clicked") for s in subs[:3]]
        assert send_events(client, app_creds, message_id, events).status_code == 200

    fetched = server.sdk(app_creds).get_notification(app_creds.app_id, message_id)
    assert (fetched.successful, fetched.failed, fetched.received, fetched.converted) == (8, 2, 8, 3)
    # The SDK cannot read platform_delivery_stats as an attribute (its composed model
    # raises even on OneSignal's own answers); to_dict() reads it.
    stats = fetched.to_dict()["platform_delivery_stats"]
    assert stats["ios"]["successful"] == 4
    assert stats["android"] == {"successful": 4, "failed": 2, "errored": 0, "converted": 0,
                                "received": 4}


def test_any_failure_event_counts_as_failed(server, app_creds) -> None:
    """A bounce or a rejection recorded alone, with no `failed` event beside it, is a
    failure."""
    with server.client(app_creds) as client:
        email = create_message(client, app_creds, "email")
        subs = [str(uuid.uuid4()) for _ in range(5)]
        events = [event(s, "sent", device_type="Email") for s in subs]
        events += [event(subs[0], "bounced", failure_message="550 mailbox unavailable"),
                   event(subs[1], "failed", failure_message="timeout"),
                   event(subs[2], "bounced"), event(subs[2], "failed")]
        assert send_events(client, app_creds, email, events).status_code == 200
        sms = create_message(client, app_creds, "sms")
        assert send_events(client, app_creds, sms, [
            event(s, "sent", device_type="SMS") for s in subs[:2]] + [
            event(subs[0], "rejected", failure_message="30007 filtered")]).status_code == 200

    api = server.sdk(app_creds)
    fetched = api.get_notification(app_creds.app_id, email)
    assert (fetched.successful, fetched.failed) == (2, 3)
    assert fetched.to_dict()["platform_delivery_stats"]["email"]["bounced"] == 2
    fetched = api.get_notification(app_creds.app_id, sms)
    assert (fetched.successful, fetched.failed) == (1, 1)


def test_sdk_sees_errors_in_onesignal_envelope(server, app_creds) -> None:
    api = server.sdk(app_creds)
    with pytest.raises(onesignal.ApiException) as err:
        api.get_notification(app_creds.app_id, str(uuid.uuid4()))
    assert err.value.status == 404
    assert "errors" in err.value.body


def test_bad_inputs_are_400(server, app_creds) -> None:
    with server.client(app_creds) as client:
        assert client.get("/notifications/nope", params={"app_id": app_creds.app_id}
                          ).status_code == 400
        r = client.get(f"/notifications/{uuid.uuid4()}")
        assert r.status_code == 400 and r.json() == {"errors": ["app_id is required (a UUID)"]}
        r = client.post("/notifications", json={"app_id": app_creds.app_id,
                                                "target_channel": "fax"})
        assert r.status_code == 400
        assert r.json()["errors"] == ["target_channel: must be one of push, email, sms"]
        r = client.post("/notifications", content=b"[1,2", headers={"content-type": "application/json"})
        assert r.status_code == 400 and r.json()["errors"]
        assert client.get("/notifications", params={"app_id": app_creds.app_id, "limit": 51}
                          ).status_code == 400
        r = client.get("/no/such/route")
        assert r.status_code == 404 and r.json() == {"errors": ["Not Found"]}
        # Nothing was created by the rejected requests.
        assert client.get("/notifications", params={"app_id": app_creds.app_id}
                          ).json()["total_count"] == 0


def test_keys_are_required_and_scoped_to_their_app(server) -> None:
    a = server.create_app("a", account="acme")
    b = server.create_app("b", account="acme")
    with server.client(a) as client_a, server.client(b) as client_b:
        message_a = create_message(client_a, a)
        # A missing, malformed or unknown key is 401 in the envelope.
        with server.client() as anon:
            for headers in ({}, {"Authorization": "Key nope"}, {"Authorization": "Basic"}):
                r = anon.get(f"/notifications/{message_a}", params={"app_id": a.app_id},
                             headers=headers)
                assert r.status_code == 401
                assert r.json() == {"errors": ["Missing or invalid REST API key for the app."]}
        # Bearer works as well as Key.
        r = client_a.get(f"/notifications/{message_a}", params={"app_id": a.app_id},
                         headers={"Authorization": f"Bearer {a.api_key}"})
        assert r.status_code == 200
        # B's key cannot read, list or write A's things: as if they did not exist.
        r = client_b.get(f"/notifications/{message_a}", params={"app_id": a.app_id})
        assert r.status_code == 404
        r = client_b.get(f"/notifications/{message_a}", params={"app_id": b.app_id})
        assert r.status_code == 404
        r = client_b.get("/notifications", params={"app_id": a.app_id})
        assert r.status_code == 404
        r = send_events(client_b, b, message_a, [event()])
        assert r.status_code == 404
        r = client_b.post("/notifications", json={"app_id": a.app_id, "contents": {"en": "x"}})
        assert r.status_code == 404
        assert client_a.get("/notifications", params={"app_id": a.app_id}
                            ).json()["total_count"] == 1


def test_healthz(server) -> None:
    with server.client() as client:
        assert client.get("/healthz").json() == {"status": "ok"}
