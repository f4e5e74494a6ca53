"""`msgtrail backup` while a real `serve` ingests, `msgtrail restore` into an empty
directory, and `msgtrail check` finding what was damaged."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import threading
import time
import uuid
from pathlib import Path
from unittest import mock
from urllib.parse import urlsplit

import httpx
import pytest

from msgtrail.testing.service import MSGTRAIL, run_cli, start_server, stop_server
from msgtrail.testing.workload import ndjson_batches
from tests.helpers import create_message, download_when_ready, export, wait_for

BATCH = 5_000


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*MSGTRAIL, *args], capture_output=True, text=True, timeout=300,
                          env={**os.environ, **(env or {})})


def _postmark(base_url: str, app_id: str, password: str, message_id: str) -> httpx.Response:
    auth = base64.b64encode(f"msgtrail:{password}".encode()).decode()
    return httpx.post(f"{base_url}/webhooks/postmark/{app_id}",
                      headers={"Authorization": f"Basic {auth}"}, json={
                          "RecordType": "Delivery", "MessageID": str(uuid.uuid4()),
                          "Metadata": {"msgtrail_message_id": message_id,
                                       "msgtrail_subscription_id": str(uuid.uuid4())},
                          "Recipient": "a@example.com", "DeliveredAt": "2026-01-02T03:04:05Z"})


def _post(client: httpx.Client, app_id: str, message_id: str, body: bytes) -> None:
    client.post(f"/notifications/{message_id}/events", params={"app_id": app_id},
                content=body, headers={"content-type": "application/x-ndjson"}
                ).raise_for_status()


def test_backup_while_ingesting_restores_a_consistent_copy(tmp_path: Path) -> None:
    """A backup taken mid-ingestion holds whole batches only, every one acknowledged
    before it began and none that was not acknowledged by its end; restored, it serves
    the same export file, checks clean, and opens the webhook credentials it sealed."""
    srv = start_server(tmp_path / "live")
    acknowledged = [0]
    stop = threading.Event()
    try:
        creds = srv.create_app()
        with srv.client(creds) as client:
            message_id = create_message(client, creds)
            doc = json.loads(run_cli(srv.data_dir, "apps", "connect", creds.app_id, "postmark",
                                     "--public-url", srv.base_url, "--json"))
            password = str(urlsplit(doc["url"]).password)
            for body in ndjson_batches(2 * BATCH, BATCH, int(time.time())):
                _post(client, creds.app_id, message_id, body)
            acknowledged[0] = 4 * BATCH
            first = export(client, creds, message_id).json()["csv_file_url"]
            original = download_when_ready(first)

            def ingest() -> None:
                """Fresh recipients, a batch per request, until told to stop."""
                with srv.client(creds) as sender:
                    while not stop.is_set():
                        for body in ndjson_batches(10 * BATCH, BATCH, int(time.time())):
                            _post(sender, creds.app_id, message_id, body)
                            acknowledged[0] += BATCH

            sender = threading.Thread(target=ingest)
            sender.start()
            wait_for(lambda: acknowledged[0] > 4 * BATCH)  # the sender is under way
            before = acknowledged[0]
            backup = _cli("backup", str(tmp_path / "backup"), "--data-dir", str(srv.data_dir))
            after = acknowledged[0]
            stop.set()
            sender.join()
        assert backup.returncode == 0, backup.stderr
        assert after > before, "ingestion did not run while the backup was taken"
    finally:
        stop.set()
        stop_server(srv)

    summary = json.loads((tmp_path / "backup" / "backup.json").read_text())
    assert summary["events"] % BATCH == 0  # whole batches: one moment of the database
    # (a batch stored just before the copy may be acknowledged just after it ended)
    assert before <= summary["events"] <= after + BATCH
    assert summary["files"] == 1 and summary["secret_key"]

    restored_dir = tmp_path / "restored"
    restore = _cli("restore", str(tmp_path / "backup"), "--data-dir", str(restored_dir))
    assert restore.returncode == 0, restore.stderr
    assert f"{summary['events']:,} events" in restore.stdout
    assert "no problems found" in restore.stdout
    check = _cli("check", "--data-dir", str(restored_dir))
    assert check.returncode == 0 and "no problems found" in check.stdout, check.stdout

    restored = start_server(restored_dir)
    try:
        counts = httpx.get(f"{restored.base_url}/notifications/{message_id}",
                           params={"app_id": creds.app_id},
                           headers={"Authorization": f"Key {creds.api_key}"}).json()
        # Every recipient sent to and delivered: one event each.
        assert counts["successful"] + counts["received"] == summary["events"]
        # The export file's URL (same token, new host) serves the same bytes.
        path = urlsplit(first).path
        assert httpx.get(f"{restored.base_url}{path}").content == original
        # The webhook credentials sealed before the backup still open after it.
        assert _postmark(restored.base_url, creds.app_id, password,
                         message_id).status_code == 200
    finally:
        stop_server(restored)


def test_restore_refuses_what_it_must_not_overwrite_or_trust(tmp_path: Path) -> None:
    srv = start_server(tmp_path / "live")
    try:
        srv.create_app()
    finally:
        stop_server(srv)
    assert _cli("backup", str(tmp_path / "b"), "--data-dir", str(srv.data_dir)).returncode == 0
    # Into a data dir that holds something: refused, nothing written.
    taken = tmp_path / "taken"
    taken.mkdir()
    (taken / "keep.txt").write_text("mine")
    refused = _cli("restore", str(tmp_path / "b"), "--data-dir", str(taken))
    assert refused.returncode == 1 and "not an empty directory" in refused.stderr
    assert sorted(p.name for p in taken.iterdir()) == ["keep.txt"]
    # A backup into a directory that holds something: refused.
    assert "not an empty directory" in _cli(
        "backup", str(taken), "--data-dir", str(srv.data_dir)).stderr
    # A damaged backup: refused before anything is written.
    with open(tmp_path / "b" / "msgtrail.db", "r+b") as db:
        db.seek(200)
        db.write(b"\xff")
    damaged = _cli("restore", str(tmp_path / "b"), "--data-dir", str(tmp_path / "new"))
    assert damaged.returncode == 1 and "does not match its checksum" in damaged.stderr
    assert not (tmp_path / "new" / "msgtrail.db").exists()
    # An unfinished one (no backup.json): refused.
    (tmp_path / "b" / "backup.json").unlink()
    assert "not a backup" in _cli("restore", str(tmp_path / "b"), "--data-dir",
                                  str(tmp_path / "new2")).stderr


@pytest.mark.parametrize("damage", ["file bytes", "file gone", "segment", "job state"])
def test_check_reports_damage_and_exits_non_zero(tmp_path: Path, backend, damage: str) -> None:
    # No upkeep: it would rewrite the segment broken behind its back.
    srv = start_server(tmp_path, backend=backend, env={"MSGTRAIL_UPKEEP_QUIET_SECONDS": "3600",
                                                        "MSGTRAIL_UPKEEP_MAX_LAG_SECONDS": "3600"})
    try:
        creds = srv.create_app()
        with srv.client(creds) as client:
            message_id = create_message(client, creds)
            for body in ndjson_batches(3 * BATCH // 2, BATCH, int(time.time())):
                _post(client, creds.app_id, message_id, body)
            download_when_ready(export(client, creds, message_id).json()["csv_file_url"])
        # Checked while the service runs: a snapshot, no lock.
        clean = _cli("check", "--data-dir", str(tmp_path), env=srv.env)
        assert clean.returncode == 0, clean.stdout + clean.stderr
        assert f"{3 * BATCH:,} events" in clean.stdout and "1 file(s)" in clean.stdout
        _damage(srv, damage)
        found = _cli("check", "--data-dir", str(tmp_path), env=srv.env)
        assert found.returncode == 1, found.stdout
        expected = {"file bytes": "does not match its manifest's SHA-256",
                    "file gone": "is missing",
                    "segment": "cannot be read",
                    "job state": "unknown state 'lost'"}[damage]
        assert expected in found.stdout and "1 problem(s) found" in found.stderr
    finally:
        stop_server(srv)


def _damage(srv, damage: str) -> None:  # type: ignore[no-untyped-def]
    """Break one thing the store keeps, behind the service's back."""
    from sqlalchemy import text

    from msgtrail.files import open_store
    from msgtrail.settings import Settings

    settings = Settings(data_dir=srv.data_dir, database_url=srv.env.get("MSGTRAIL_DATABASE_URL"),
                        storage_url=srv.env.get("MSGTRAIL_STORAGE_URL"))
    with srv.database() as engine, engine.begin() as conn:
        key = conn.execute(text("SELECT file_key FROM jobs WHERE state = 'ready'")).scalar_one()
        if damage == "segment":
            conn.execute(text("UPDATE activity_segments SET data = :d WHERE id = "
                              "(SELECT min(id) FROM activity_segments)"), {"d": b"not arrow"})
        elif damage == "job state":
            conn.execute(text("UPDATE jobs SET state = 'lost'"))
    with mock.patch.dict(os.environ, srv.env):  # S3's credentials
        store = open_store(settings.resolved_storage_url())
    if damage == "file gone":
        store.delete(key)
    elif damage == "file bytes":
        reader = store.reader(key)
        assert reader is not None
        data = bytearray(reader.read())
        data[-1] ^= 0xFF
        with store.writer(key) as out:
            out.write(bytes(data))

