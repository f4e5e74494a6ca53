"""Audience-activity export: the seed's contract end to end, and what msgtrail adds."""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import sqlite3
import uuid
from urllib.parse import urlparse

import httpx
import onesignal
import pytest

from msgtrail.testing.service import start_server, stop_server
from tests.helpers import (
    create_message,
    download_when_ready,
    event,
    export,
    export_status,
    iso,
    send_events,
    wait_for,
    wait_until_ready,
)

PUSH_HEADER = ["external_user_id", "subscription_id", "device_type", "sent", "delivered",
               "clicked", "onesignal_id", "failed", "unsubscribed", "failure_message"]


def _rows(data: bytes) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(gzip.decompress(data).decode())))


@pytest.fixture(scope="module")
def slow_server(tmp_path_factory, backend):
    """Each export chunk takes 2 s more to write: long enough to watch a running job."""
    srv = start_server(tmp_path_factory.mktemp("slow"), backend=backend,
                       env={"MSGTRAIL_EXPORT_CHUNK_DELAY": "2"})
    yield srv
    stop_server(srv)


def test_sdk_export_matches_every_ingested_row_and_column(server, app_creds) -> None:
    base = 1_790_000_000
    subs = sorted(str(uuid.uuid4()) for _ in range(5))
    osids = [str(uuid.uuid4()) for _ in subs]
    events = [event(s, "sent", base + i, onesignal_id=o, external_id=f"usér-{i} 日本",
                    device_type="iOS" if i % 2 else "Android")
              for i, (s, o) in enumerate(zip(subs, osids, strict=False))]
    events += [event(subs[0], "delivered", base + 100), event(subs[0], "clicked", base + 200),
               event(subs[1], "delivered", base + 101), event(subs[1], "unsubscribed", base + 900),
               event(subs[2], "failed", base + 50,
                     failure_message='NotRegistered, "token" expired\nretry\tlater \\ C:\\x — échec'),
               # Repeats keep the earliest time; an event without attributes keeps them.
               event(subs[0], "clicked", base + 300), event(subs[3], "sent", base + 1)]
    # Ids and messages outside ASCII come out as the UTF-8 they came in as.
    # An external id needing CSV quoting.
    events.append(event(subs[4], "delivered", base + 10, external_id="a,b"))
    with server.client(app_creds) as client:
        message_id = create_message(client, app_creds)
        assert send_events(client, app_creds, message_id, events).status_code == 200

    api = server.sdk(app_creds)
    response = api.export_events(message_id, app_creds.app_id)
    url = response.csv_file_url
    *_, directory, name = urlparse(url).path.split("/")
    assert name.startswith(f"events_audience-activity-{message_id}-push-")
    assert name.endswith(".csv.gz")
    uuid.UUID(directory)  # the random directory that makes URLs unguessable
    assert response.to_dict()["export_id"]

    data = download_when_ready(url)
    text = gzip.decompress(data).decode()
    assert text.splitlines()[0] == ",".join(PUSH_HEADER)
    rows = _rows(data)
    assert [r["subscription_id"] for r in rows] == subs
    expected = [
        dict(external_user_id="usér-0 日本", device_type="Android", sent=iso(base),
             delivered=iso(base + 100), clicked=iso(base + 200), onesignal_id=osids[0],
             failed="", unsubscribed="", failure_message=""),
        dict(external_user_id="usér-1 日本", device_type="iOS", sent=iso(base + 1),
             delivered=iso(base + 101), clicked="", onesignal_id=osids[1], failed="",
             unsubscribed=iso(base + 900), failure_message=""),
        dict(external_user_id="usér-2 日本", device_type="Android", sent=iso(base + 2),
             delivered="", clicked="", onesignal_id=osids[2], failed=iso(base + 50),
             unsubscribed="", failure_message='NotRegistered, "token" expired\nretry\tlater \\ C:\\x — échec'),
        dict(external_user_id="usér-3 日本", device_type="iOS", sent=iso(base + 1), delivered="",
             clicked="", onesignal_id=osids[3], failed="", unsubscribed="",
             failure_message=""),
        dict(external_user_id="usér-4 日本", device_type="Android", sent=iso(base + 4),
             delivered=iso(base + 10), clicked="", onesignal_id=osids[4], failed="",
             unsubscribed="", failure_message=""),
    ]
    for row, want, sub in zip(rows, expected, subs, strict=False):
        assert row == {**want, "subscription_id": sub}
    # external_id keeps its first known value ("usér-4 日本"), never the later "a,b".


def test_email_and_sms_columns(server, app_creds) -> None:
    with server.client(app_creds) as client:
        for channel, extra in (("email", ["opened", "bounced", "suppressed", "reported_spam"]),
                               ("sms", ["suppressed", "rejected"])):
            message_id = create_message(client, app_creds, channel)
            sub = str(uuid.uuid4())
            last = extra[-1]
            assert send_events(client, app_creds, message_id,
                               [event(sub, "sent", 1_790_000_000),
                                event(sub, last, 1_790_000_060)]).status_code == 200
            url = export(client, app_creds, message_id).json()["csv_file_url"]
            assert f"-{channel}-" in url
            rows = _rows(download_when_ready(url))
            assert list(rows[0]) == PUSH_HEADER + extra
            assert rows[0][last] == iso(1_790_000_060)
            assert rows[0]["sent"] == iso(1_790_000_000)


def test_selected_events_only(server, app_creds) -> None:
    with server.client(app_creds) as client:
        message_id = create_message(client, app_creds)
        subs = [str(uuid.uuid4()) for _ in range(6)]
        events = [event(s, "sent") for s in subs]
        events += [event(subs[0], "clicked"), event(subs[1], "failed"),
                   event(subs[2], "delivered")]
        send_events(client, app_creds, message_id, events)
        r = export(client, app_creds, message_id, events="clicked,failed")
        assert r.status_code == 200
        data = download_when_ready(r.json()["csv_file_url"])
        rows = _rows(data)
        assert sorted(r["subscription_id"] for r in rows) == sorted(subs[:2])
        status = wait_until_ready(client, app_creds, message_id, r.json()["export_id"])
        assert status["events"] == ["clicked", "failed"]
        assert status["rows_written"] == status["total_rows"] == 2
        # The manifest describes the file as served, in the status and at its own URL.
        manifest = status["manifest"]
        assert manifest == httpx.get(r.json()["manifest_url"]).json()
        assert status["manifest_url"] == r.json()["manifest_url"]
        assert manifest["sha256"] == hashlib.sha256(data).hexdigest()
        assert (manifest["rows"], manifest["bytes"]) == (2, len(data))
        assert (manifest["format"], manifest["compression"]) == ("csv", "gzip")
        assert [c["name"] for c in manifest["columns"]] == PUSH_HEADER
        assert {c["name"]: c["type"] for c in manifest["columns"]}["clicked"] == "timestamp"
        assert manifest["filter"] == {"message_ids": [message_id],
                                      "events": ["clicked", "failed"],
                                      "since": None, "until": None}
        assert manifest["cursor"] is None and manifest["next_cursor"] is None
        assert manifest["export_id"] == r.json()["export_id"]
        assert manifest["expires_at"] == status["expires_at"]
        r = export(client, app_creds, message_id, events="clicked,opened")
        assert r.status_code == 400
        assert r.json() == {"errors": ["events: 'opened' not among the push events sent, "
                                       "delivered, clicked, failed, unsubscribed"]}


def test_url_is_nosuchkey_until_complete_and_status_tells_progress(slow_server) -> None:
    creds = slow_server.create_app("slow", account="solo")
    with slow_server.client(creds) as client:
        message_id = create_message(client, creds)
        send_events(client, creds, message_id, [event() for _ in range(20)])
        # The answer comes before the (slowed) job has written anything: the URL 404s.
        r = export(client, creds, message_id)
        assert r.status_code == 200
        url, export_id = r.json()["csv_file_url"], r.json()["export_id"]
        first = httpx.get(url)
        assert first.status_code == 404
        # No manifest before the file: NoSuchKey, as for the file.
        assert httpx.get(r.json()["manifest_url"]).status_code == 404
        assert first.headers["content-type"] == "application/xml"
        assert "<Error><Code>NoSuchKey</Code><Message>The specified key does not exist." \
               "</Message>" in first.text
        running = wait_for(lambda: (s := export_status(client, creds, message_id, export_id))
                           ["state"] == "running" and "total_rows" in s and s)
        assert running["total_rows"] == 20 and "started_at" in running
        assert "manifest" not in running
        assert httpx.get(r.json()["manifest_url"]).status_code == 404
        assert httpx.get(url).status_code == 404
        data = download_when_ready(url)
        assert len(_rows(data)) == 20
        done = wait_until_ready(client, creds, message_id, export_id)
        assert done["rows_written"] == 20
        assert done["bytes"] == len(data) and "finished_at" in done and "error" not in done
        # Resumable downloads: the file server honours Range.
        part = httpx.get(url, headers={"Range": "bytes=10-"})
        assert part.status_code == 206 and part.content == data[10:]


def test_one_export_at_a_time_per_account(slow_server) -> None:
    a = slow_server.create_app("a", account="busy")
    b = slow_server.create_app("b", account="busy")
    other = slow_server.create_app("c", account="elsewhere")
    with slow_server.client(a) as ca, slow_server.client(b) as cb, \
            slow_server.client(other) as co:
        ma, mb, mo = (create_message(ca, a), create_message(cb, b), create_message(co, other))
        for client, creds, m in ((ca, a, ma), (cb, b, mb), (co, other, mo)):
            send_events(client, creds, m, [event() for _ in range(10)])
        first = export(ca, a, ma)
        assert first.status_code == 200
        # The same export asked again while it runs: the same URL, not a 429.
        again = export(ca, a, ma)
        assert again.status_code == 200 and again.json() == first.json()
        # Another export of the same account (another app, too) waits its turn.
        busy = export(cb, b, mb)
        assert busy.status_code == 429
        assert busy.json()["errors"][0].startswith("Only one export at a time per account")
        assert 1 <= int(busy.headers["Retry-After"]) <= 60
        other_events = export(ca, a, ma, events="clicked")
        assert other_events.status_code == 429
        # Another account is not held up.
        assert export(co, other, mo).status_code == 200
        download_when_ready(first.json()["csv_file_url"])
        wait_for(lambda: export(cb, b, mb).status_code == 200)


def test_keys_never_reach_another_apps_exports(server) -> None:
    a = server.create_app("a", account="iso-1")
    b = server.create_app("b", account="iso-2")
    with server.client(a) as ca, server.client(b) as cb:
        message_a = create_message(ca, a)
        send_events(ca, a, message_a, [event()])
        r = export(ca, a, message_a)
        export_id = r.json()["export_id"]
        download_when_ready(r.json()["csv_file_url"])
        assert export(cb, b, message_a).status_code == 404
        r = cb.post(f"/notifications/{message_a}/export_events", params={"app_id": a.app_id})
        assert r.status_code == 404
        for app_id in (a.app_id, b.app_id):
            r = cb.get(f"/notifications/{message_a}/export_events/{export_id}",
                       params={"app_id": app_id})
            assert r.status_code == 404 and r.json()["errors"]


def test_bad_requests(server, app_creds) -> None:
    with server.client(app_creds) as client:
        message_id = create_message(client, app_creds)
        r = client.post(f"/notifications/{message_id}/export_events")
        assert r.status_code == 400 and r.json() == {"errors": ["app_id is required (a UUID)"]}
        r = export(client, app_creds, "not-a-uuid")
        assert r.status_code == 400 and "message_id" in r.json()["errors"][0]
        r = client.post(f"/notifications/{message_id}/export_events",
                        params={"app_id": app_creds.app_id}, content=b"{nope",
                        headers={"content-type": "application/json"})
        assert r.status_code == 400 and r.json() == {"errors": ["body: not valid JSON"]}
        with server.client() as anon:
            r = anon.post(f"/notifications/{message_id}/export_events",
                          params={"app_id": app_creds.app_id},
                          headers={"Authorization": "Key wrong"})
            assert r.status_code == 401
            assert r.json() == {"errors": ["Missing or invalid REST API key for the app."]}
        r = export(client, app_creds, str(uuid.uuid4()))
        assert r.status_code == 404 and "has been purged" in r.json()["errors"][0]
        # None of them queued anything: the account can export at once.
        assert export(client, app_creds, message_id).status_code == 200
    api = server.sdk(app_creds)
    with pytest.raises(onesignal.ApiException) as err:
        api.export_events(str(uuid.uuid4()), app_creds.app_id)
    assert err.value.status == 404


def test_files_expire_and_old_activity_is_purged(tmp_path, backend) -> None:
    srv = start_server(tmp_path, backend=backend, env={"MSGTRAIL_FILE_TTL_SECONDS": "2",
                                      "MSGTRAIL_ACTIVITY_RETENTION_DAYS": str(4 / 86400),
                                      "MSGTRAIL_PURGE_INTERVAL": "0.2"})
    try:
        creds = srv.create_app()
        with srv.client(creds) as client:
            message_id = create_message(client, creds)
            send_events(client, creds, message_id, [event()])
            r = export(client, creds, message_id)
            url, export_id = r.json()["csv_file_url"], r.json()["export_id"]
            download_when_ready(url)
            assert len(backend.stored_files(srv.env, tmp_path)) == 1
            # After its lifetime the URL answers NoSuchKey again and the file is gone.
            wait_for(lambda: httpx.get(url).status_code == 404, timeout=10)
            assert b"NoSuchKey" in httpx.get(url).content
            wait_for(lambda: not backend.stored_files(srv.env, tmp_path), timeout=10)
            assert export_status(client, creds, message_id, export_id)["state"] == "expired"
            # Past the retention window the activity is purged on its own: 404.
            r = wait_for(lambda: (r := export(client, creds, message_id)).status_code == 404
                         and r, timeout=15)
            assert "purged" in r.json()["errors"][0]
    finally:
        stop_server(srv)


def test_rate_limit_is_429_with_retry_after(tmp_path, backend) -> None:
    srv = start_server(tmp_path, backend=backend, env={"MSGTRAIL_EXPORT_RATE_LIMIT": "2/minute"})
    try:
        creds = srv.create_app()
        with srv.client(creds) as client:
            message_id = create_message(client, creds)
            for _ in range(2):
                r = export(client, creds, message_id)
                download_when_ready(r.json()["csv_file_url"])
            r = export(client, creds, message_id)
            assert r.status_code == 429 and r.json() == {"errors": ["API rate limit exceeded"]}
            assert 1 <= int(r.headers["Retry-After"]) <= 60
    finally:
        stop_server(srv)


def test_storage_unavailable_is_503(tmp_path, backend) -> None:
    srv = start_server(tmp_path, backend=backend)
    try:
        creds = srv.create_app()
        with srv.client(creds) as client:
            message_id = create_message(client, creds)
            backend.break_storage(srv.env, tmp_path)
            r = export(client, creds, message_id)
            assert r.status_code == 503 and r.json()["errors"]
            assert int(r.headers["Retry-After"]) >= 1
            backend.mend_storage(srv.env, tmp_path)
            assert export(client, creds, message_id).status_code == 200
    finally:
        stop_server(srv)


def test_rate_limit_store_unavailable_is_503(tmp_path) -> None:
    # Redis on a port where nothing listens: the export cannot be counted, so it is
    # refused with 503 in the envelope, and nothing is queued.
    srv = start_server(tmp_path, env={"MSGTRAIL_REDIS_URL": "redis://127.0.0.1:1/0"})
    try:
        creds = srv.create_app()
        with srv.client(creds) as client:
            message_id = create_message(client, creds)
            r = export(client, creds, message_id)
            assert r.status_code == 503 and "rate limit" in r.json()["errors"][0]
            assert int(r.headers["Retry-After"]) >= 1
        with sqlite3.connect(tmp_path / "msgtrail.db") as db:
            assert db.execute("SELECT count(*) FROM jobs").fetchone() == (0,)
    finally:
        stop_server(srv)
