"""The audit trail: every act on an app recorded with its time, key prefix and remote
address, read a page at a time by the app's own key, never holding a secret, and
purged after its retention period."""

from __future__ import annotations

import json
import re
import time
from urllib.parse import urlsplit

from msgtrail import apps
from msgtrail.ingest import connections
from msgtrail.runtime import retention
from msgtrail.vault import Vault
from tests.helpers import wait_for
from tests.integration.conftest import InProcess


def _trail(api: InProcess, **params: object) -> list[dict]:  # type: ignore[type-arg]
    """The app's whole trail, newest first, read two at a time."""
    found, before = [], None
    while True:
        r = api.client.get(f"/apps/{api.app_id}/audit",
                           params={"limit": 2, **params, **({"before": before} if before else {})})
        assert r.status_code == 200, r.text
        found += r.json()["events"]
        before = r.json()["next_before"]
        if before is None:
            return found


def _ready(api: InProcess, message_id: str, export_id: str) -> None:
    wait_for(lambda: api.client.get(f"/notifications/{message_id}/export_events/{export_id}",
                                    params={"app_id": api.app_id}).json()["state"] == "ready")


def test_every_act_is_recorded_with_who_and_from_where(api: InProcess) -> None:
    message_id = api.create_message()
    api.send(message_id, [{"subscription_id": "6f1f2c38-1f54-4a34-9c41-63c2ab3c8a4f",
                           "event": "sent", "timestamp": 1_700_000_000}])
    asked = api.client.post(f"/notifications/{message_id}/export_events",
                            params={"app_id": api.app_id, "format": "jsonl"}).json()
    _ready(api, message_id, asked["export_id"])
    # A refused request changes nothing, the trail included.
    assert api.client.post(f"/notifications/{message_id}/export_events",
                           params={"app_id": api.app_id, "events": "nope"}).status_code == 400
    # A history report is always served through msgtrail (S3 mode redirects).
    history = api.client.post(f"/notifications/{message_id}/history",
                              json={"app_id": api.app_id, "events": "sent"}).json()
    path = urlsplit(history["destination_url"]).path
    _ready(api, message_id, history["export_id"])
    polled = api.client.head(path, follow_redirects=False)
    assert polled.status_code in (200, 307), (polled.status_code, polled.text)  # no download
    assert api.fetch(history["destination_url"])
    with api.engine.begin() as conn:
        _, secret = apps.set_webhook(conn, Vault(api.settings), api.app_id,
                                     "https://hooks.example.com:8443/done?t=1", False)
        apps.set_webhook(conn, Vault(api.settings), api.app_id,
                         "https://user:hunter2@hooks.example.com/x", True)
        _, credential = connections.connect(conn, Vault(api.settings), api.app_id, "postmark")
        connections.disconnect(conn, api.app_id, "postmark")
        connections.disconnect(conn, api.app_id, "postmark")  # not connected: nothing done
        new_key = apps.rotate_key(conn, api.app_id)

    api.client.headers["Authorization"] = f"Key {new_key}"
    trail = _trail(api)
    actions = [e["action"] for e in reversed(trail)]
    assert actions == ["app.created", "export.requested", "export.requested",
                       "file.downloaded", "settings.changed", "settings.changed",
                       "connector.connected", "connector.disconnected", "key.rotated"]
    ids = [e["id"] for e in trail]
    assert ids == sorted(ids, reverse=True) and len(set(ids)) == len(ids)
    export, report = [e for e in reversed(trail) if e["action"] == "export.requested"]
    assert export["via"] == "api" and export["key_prefix"] == api.key[:12]
    assert export["remote_addr"] == "testclient"
    assert export["detail"] == {"kind": "export", "export_id": asked["export_id"],
                                "message_id": message_id, "format": "jsonl"}
    assert report["detail"]["kind"] == "history"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00", export["at"])
    [got] = [e for e in trail if e["action"] == "file.downloaded"]
    assert got["via"] == "download" and got["key_prefix"] is None
    assert got["remote_addr"] == "testclient"
    assert got["detail"] == {"export_id": history["export_id"], "name": path.rsplit("/", 1)[1]}
    [rotated] = [e for e in trail if e["action"] == "key.rotated"]
    assert rotated["via"] == "cli" and rotated["detail"] == {"new_key_prefix": new_key[:12],
                                                             "revoked": 1}
    changes = [e["detail"] for e in reversed(trail) if e["action"] == "settings.changed"]
    assert changes == [{"webhook_url": "https://hooks.example.com:8443/done?t=1",
                        "webhook_secret": "issued"},
                       {"webhook_url": "https://hooks.example.com/x", "webhook_secret": "issued"}]
    # No secret anywhere in the trail: keys, webhook secrets, URL passwords, credentials.
    text = json.dumps(trail)
    for secret_value in (api.key, new_key, secret, "hunter2", credential["password"]):
        assert secret_value and secret_value not in text


def test_a_key_reads_only_its_own_apps_trail(api: InProcess) -> None:
    with api.engine.begin() as conn:
        other, other_key = apps.create_app(conn, "other")
    mine = api.client.get(f"/apps/{api.app_id}/audit").json()["events"]
    assert [e["action"] for e in mine] == ["app.created"]
    foreign = api.client.get(f"/apps/{other.app_id}/audit")
    assert foreign.status_code == 404 and "errors" in foreign.json()
    assert api.client.get(f"/apps/{api.app_id}/audit",
                          headers={"Authorization": ""}).status_code == 401
    bad = api.client.get(f"/apps/{api.app_id}/audit", params={"limit": 0})
    assert bad.status_code == 400 and "errors" in bad.json()
    assert other_key  # the other app's own key reads its own (and only its) record
    theirs = api.client.get(f"/apps/{other.app_id}/audit",
                            headers={"Authorization": f"Key {other_key}"}).json()["events"]
    assert [e["detail"]["name"] for e in theirs] == ["other"]


def test_records_older_than_the_retention_period_are_purged(api: InProcess) -> None:
    api.create_message()
    with api.engine.begin() as conn:
        apps.set_history(conn, api.app_id, False)
    settings = api.settings.model_copy(update={"audit_retention_days": 30})
    at = time.time()
    kept = retention.purge(api.engine, api.service.store, settings, now=at + 29 * 86400)
    assert kept["audit"] == 0 and len(_trail(api)) == 2
    gone = retention.purge(api.engine, api.service.store, settings, now=at + 31 * 86400)
    assert gone["audit"] == 2 and _trail(api) == []


def test_a_cursor_past_any_id_is_a_400_not_a_500(api: InProcess) -> None:
    r = api.client.get(f"/apps/{api.app_id}/audit", params={"before": 2**64})
    assert r.status_code == 400 and "errors" in r.json()
    assert api.client.get(f"/apps/{api.app_id}/audit",
                          params={"before": 2**63 - 1}).json()["events"]
