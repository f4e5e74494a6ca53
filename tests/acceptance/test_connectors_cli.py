"""Connecting providers and importing OneSignal files with the `msgtrail` command, against
the running service, on both configurations."""

from __future__ import annotations

import base64
import csv
import gzip
import io
import json
import os
import subprocess
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit

import httpx
from prometheus_client.parser import text_string_to_metric_families

from msgtrail.client import Client
from msgtrail.testing.service import MSGTRAIL, AppCreds, Server, run_cli
from tests.helpers import create_message, send_events

NOW = int(time.time())


def cli(server: Server, *args: str) -> str:
    return run_cli(server.data_dir, *args, env=server.env)


def test_connect_prints_the_url_and_webhooks_flow_through_serve(
        server: Server, app_creds: AppCreds) -> None:
    doc = json.loads(cli(server, "apps", "connect", app_creds.app_id, "postmark",
                         "--public-url", server.base_url, "--json"))
    assert doc["source"] == "postmark"
    url = urlsplit(doc["url"])
    assert url.username == "msgtrail" and url.password
    assert url.path == f"/webhooks/postmark/{app_creds.app_id}"
    with server.client(app_creds) as api:
        message_id = create_message(api, app_creds, channel="email")
    sub = str(uuid.uuid4())
    auth = base64.b64encode(f"msgtrail:{url.password}".encode()).decode()
    target = f"{server.base_url}{url.path}"

    def delivery(meta: dict[str, str]) -> httpx.Response:
        return httpx.post(target, headers={"Authorization": f"Basic {auth}"}, json={
            "RecordType": "Delivery", "MessageID": str(uuid.uuid4()), "Metadata": meta,
            "Recipient": "a@example.com", "DeliveredAt": "2026-01-02T03:04:05Z"})

    r = delivery({"msgtrail_message_id": message_id, "msgtrail_subscription_id": sub})
    assert r.status_code == 200 and r.json() == {"accepted": 1, "rejected": 0}
    assert delivery({}).json() == {"accepted": 0, "rejected": 1}
    wrong = httpx.post(target, headers={"Authorization": "Basic " + base64.b64encode(
        b"msgtrail:guess").decode()}, json={"RecordType": "Delivery"})
    assert wrong.status_code == 401 and wrong.json()["errors"]

    rejected = json.loads(cli(server, "webhooks", "rejected", app_creds.app_id, "--json"))
    assert rejected["total_count"] == 1
    assert rejected["rejections"][0]["reason"] == "no msgtrail_message_id in the event"
    text = cli(server, "webhooks", "rejected", app_creds.app_id)
    assert "1 rejected event(s)" in text and "postmark" in text
    assert "disconnected" in cli(server, "apps", "disconnect", app_creds.app_id, "postmark")
    assert "was not connected" in cli(server, "apps", "disconnect", app_creds.app_id,
                                      "postmark")


def test_connect_refuses_a_bad_credential(server: Server, app_creds: AppCreds) -> None:
    for args, said in ((["sendgrid", "--public-key", "bm90IGEga2V5"], "public key"),
                       (["ses"], "--topic-arn"), (["twilio"], "--auth-token")):
        result = subprocess.run(
            [*MSGTRAIL, "apps", "connect", app_creds.app_id, *args, "--data-dir",
             str(server.data_dir)], capture_output=True, text=True, env={**os.environ, **server.env})
        assert result.returncode != 0 and said in result.stderr, result.stderr


def _rows(path: Path) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(gzip.decompress(path.read_bytes()).decode(),
                                           newline="")))


def _imported(server: Server) -> float:
    """Events imported, as the server's /metrics sums them."""
    page = httpx.get(f"{server.base_url}/metrics").text
    return sum(s.value for f in text_string_to_metric_families(page) for s in f.samples
               if s.name == "msgtrail_events_accepted_total"
               and s.labels == {"source": "import"})


def test_import_of_an_export_gives_the_same_rows_and_twice_changes_nothing(
        server: Server, app_creds: AppCreds, tmp_path: Path) -> None:
    with server.client(app_creds) as api:
        original = create_message(api, app_creds, channel="email")
        subs = [str(uuid.uuid4()) for _ in range(30)]
        events = [{"subscription_id": s, "event": "sent", "timestamp": NOW - 600,
                   "external_id": f"user, {i} \"quoted\"", "device_type": "Email",
                   "onesignal_id": str(uuid.uuid4())} for i, s in enumerate(subs)]
        events += [{"subscription_id": s, "event": "opened", "timestamp": NOW - 500}
                   for s in subs[:10]]
        events += [{"subscription_id": s, "event": "bounced", "timestamp": NOW - 400,
                    "failure_message": "550 no such\nmailbox"} for s in subs[10:13]]
        assert send_events(api, app_creds, original, events).status_code == 200
    with Client(app_creds.api_key, app_creds.app_id, server.base_url, poll_initial=0.05) as c:
        # OneSignal's own file name: the import finds message id and channel in it.
        name = f"events_audience-activity-{uuid.uuid4()}-email-2026-11-24T10-00-00Z.csv.gz"
        exported = c.export_audience_activity(original, tmp_path / name).path
        imported_before = _imported(server)
        first = json.loads(cli(server, "import", str(exported), "--app-id", app_creds.app_id,
                               "--json"))
        assert first["created"] and first["channel"] == "email"
        assert first["recipients"] == 30 and first["events"] == 43
        again = json.loads(cli(server, "import", str(exported), "--app-id", app_creds.app_id,
                               "--json"))
        assert not again["created"] and again["message_id"] == first["message_id"]
        # Both imports counted, though each process ended before the scrape.
        assert _imported(server) - imported_before == 2 * 43
        reexported = c.export_audience_activity(first["message_id"],
                                                tmp_path / "again.csv.gz").path
    before, after = _rows(exported), _rows(reexported)
    key = lambda r: r["subscription_id"]  # noqa: E731
    assert sorted(after, key=key) == sorted(before, key=key)
    assert len(after) == 30


def test_import_refuses_a_bad_file_and_keeps_nothing(server: Server, app_creds: AppCreds,
                                                     tmp_path: Path) -> None:
    good = str(uuid.uuid4())
    path = tmp_path / "activity.csv"
    path.write_text("external_user_id,subscription_id,device_type,sent,delivered,clicked,"
                    "onesignal_id,failed,unsubscribed,failure_message\n"
                    f",{good},iOS,2026-01-01T00:00:00Z,,,,,,\n"
                    ",not-a-uuid,iOS,2026-01-01T00:00:00Z,,,,,,\n"
                    f",{uuid.uuid4()},iOS,yesterday,,,,,,\n")
    message_id = str(uuid.uuid4())
    result = subprocess.run(
        [*MSGTRAIL, "import", str(path), "--app-id", app_creds.app_id, "--message-id",
         message_id, "--data-dir", str(server.data_dir)], capture_output=True, text=True,
        env={**os.environ, **server.env})
    assert result.returncode != 0
    assert "line 3" in result.stderr and "line 4" in result.stderr, result.stderr
    with server.client(app_creds) as api:
        r = api.get(f"/notifications/{message_id}", params={"app_id": app_creds.app_id})
        assert r.status_code == 404  # not even the message was kept
