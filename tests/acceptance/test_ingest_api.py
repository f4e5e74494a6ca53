"""Event ingestion over HTTP: all or nothing, idempotent, bounded."""

import json
import uuid

from tests.helpers import create_message, event, send_events


def _counters(client, creds, message_id):
    doc = client.get(f"/notifications/{message_id}", params={"app_id": creds.app_id}).json()
    return doc["successful"], doc["failed"], doc["received"], doc["converted"]


def test_json_and_ndjson_are_accepted(server, app_creds) -> None:
    with server.client(app_creds) as client:
        message_id = create_message(client, app_creds)
        r = send_events(client, app_creds, message_id, [event(), event()])
        assert r.status_code == 200 and r.json() == {"accepted": 2, "duplicates": 0}
        lines = "\n".join(json.dumps(event()) for _ in range(3))
        r = client.post(f"/notifications/{message_id}/events", params={"app_id": app_creds.app_id},
                        content=lines, headers={"content-type": "application/x-ndjson"})
        assert r.status_code == 200 and r.json() == {"accepted": 3, "duplicates": 0}
        assert _counters(client, app_creds, message_id) == (5, 0, 0, 0)


def test_retries_are_recorded_once(server, app_creds) -> None:
    with server.client(app_creds) as client:
        message_id = create_message(client, app_creds)
        sub = str(uuid.uuid4())
        batch = [event(sub, "sent", ts=1_790_000_100), event(sub, "sent", ts=1_790_000_000),
                 event(sub, "clicked", ts=1_790_000_500)]
        r = send_events(client, app_creds, message_id, batch)
        assert r.json() == {"accepted": 2, "duplicates": 1}
        for _ in range(3):  # a pipeline retrying blindly
            assert send_events(client, app_creds, message_id, batch).status_code == 200
        assert _counters(client, app_creds, message_id) == (1, 0, 0, 1)


def test_a_bad_event_rejects_the_whole_batch(server, app_creds) -> None:
    with server.client(app_creds) as client:
        message_id = create_message(client, app_creds, "sms")
        r = send_events(client, app_creds, message_id,
                        [event(), event(name="opened"), event(sub="x")])
        assert r.status_code == 400
        assert r.json()["errors"] == [
            "events[1].event: 'opened' is not one of sent, delivered, clicked, failed, "
            "unsubscribed, suppressed, rejected",
            "events[2].subscription_id: 'x' is not a UUID"]
        assert _counters(client, app_creds, message_id) == (0, 0, 0, 0)


def test_a_body_that_is_not_utf8_is_400_in_both_forms(server, app_creds) -> None:
    with server.client(app_creds) as client:
        message_id = create_message(client, app_creds)
        line = json.dumps(event() | {"external_id": "X"}).encode().replace(b'"X"', b'"\xff"')
        for content, kind in ((line + b"\n", "application/x-ndjson"),
                              (b'{"events": [' + line + b"]}", "application/json")):
            r = client.post(f"/notifications/{message_id}/events",
                            params={"app_id": app_creds.app_id}, content=content,
                            headers={"content-type": kind})
            assert r.status_code == 400 and "utf-8" in r.json()["errors"][0], r.text
        assert _counters(client, app_creds, message_id) == (0, 0, 0, 0)


def test_size_limits_are_413(server, app_creds) -> None:
    with server.client(app_creds) as client:
        message_id = create_message(client, app_creds)
        r = send_events(client, app_creds, message_id, [event() for _ in range(10_001)])
        assert r.status_code == 413 and "10000" in r.json()["errors"][0]
        big = b'{"events": [' + b" " * (10 * 1024 * 1024) + b"]}"
        r = client.post(f"/notifications/{message_id}/events", params={"app_id": app_creds.app_id},
                        content=big, headers={"content-type": "application/json"})
        assert r.status_code == 413
        assert _counters(client, app_creds, message_id) == (0, 0, 0, 0)


def test_unknown_message_is_404(server, app_creds) -> None:
    with server.client(app_creds) as client:
        r = send_events(client, app_creds, str(uuid.uuid4()), [event()])
        assert r.status_code == 404 and r.json()["errors"]
        r = send_events(client, app_creds, "12", [event()])
        assert r.status_code == 400
