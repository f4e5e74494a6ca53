"""The restore drill from a Litestream replica on SeaweedFS: a real `msgtrail serve`
replicating while it ingests, killed with SIGKILL (it and Litestream, as a machine
that is lost), its data directory deleted, restored from the replica, and what came
back counted against what was acknowledged."""

from __future__ import annotations

import os
import shutil
import signal
import sqlite3
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import boto3
import httpx
import pytest
from cryptography.fernet import Fernet

from msgtrail.testing.seaweed import ACCESS_KEY, SECRET_KEY, Seaweed, start_seaweed
from msgtrail.testing.service import MSGTRAIL, start_server, stop_server
from msgtrail.testing.workload import ndjson_batches
from tests.helpers import create_message, download_when_ready, export

BATCH = 2_000
# Litestream ships the WAL every second; a lost machine may take this much with it.
LOSS_WINDOW_BOUND = 5.0


@pytest.fixture(scope="module")
def seaweed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Seaweed]:
    started = start_seaweed(tmp_path_factory.mktemp("seaweed-replica"))
    yield started
    started.stop()


@pytest.fixture
def replica_env(seaweed: Seaweed) -> dict[str, str]:
    bucket = f"replica-{uuid.uuid4().hex[:12]}"
    boto3.client("s3", endpoint_url=seaweed.endpoint, region_name="us-east-1",
                 aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY
                 ).create_bucket(Bucket=bucket)
    return {"MSGTRAIL_REPLICA_URL": f"s3://{bucket}/msgtrail?endpoint={seaweed.endpoint}"
                                    "&region=us-east-1",
            "MSGTRAIL_SECRET_KEY": Fernet.generate_key().decode(),
            "AWS_ACCESS_KEY_ID": ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": SECRET_KEY}


def _children(pid: int) -> list[int]:
    with open(f"/proc/{pid}/task/{pid}/children") as listed:
        return [int(p) for p in listed.read().split()]


def _cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*MSGTRAIL, *args], capture_output=True, text=True, timeout=300,
                          env={**os.environ, **env})


def _events(db: Path) -> int:
    with sqlite3.connect(db) as conn:
        return int(conn.execute("SELECT coalesce(sum(events), 0) FROM activity_segments")
                   .fetchone()[0])


def test_kill_9_then_restore_from_the_replica(tmp_path: Path, replica_env: dict[str, str]
                                              ) -> None:
    live = tmp_path / "live"
    srv = start_server(live, env=replica_env)
    [litestream] = _children(srv.process.pid)
    acked: list[tuple[float, int]] = []  # (when, events acknowledged so far)
    try:
        creds = srv.create_app()
        with srv.client(creds) as client:
            message_id = create_message(client, creds)
            first_batches = ndjson_batches(BATCH, BATCH, int(time.time()))
            for body in first_batches:
                client.post(f"/notifications/{message_id}/events",
                            params={"app_id": creds.app_id}, content=body,
                            headers={"content-type": "application/x-ndjson"}).raise_for_status()
            before_export = 2 * BATCH
            file_url = export(client, creds, message_id).json()["csv_file_url"]
            download_when_ready(file_url)

        def ingest() -> None:
            total = before_export
            with srv.client(creds) as sender:
                while True:
                    for body in ndjson_batches(20 * BATCH, BATCH, int(time.time())):
                        try:
                            sender.post(f"/notifications/{message_id}/events",
                                        params={"app_id": creds.app_id}, content=body,
                                        headers={"content-type": "application/x-ndjson"}
                                        ).raise_for_status()
                        except httpx.TransportError:
                            return
                        total += BATCH
                        acked.append((time.monotonic(), total))

        sender = threading.Thread(target=ingest)
        sender.start()
        time.sleep(4)
        # The machine is lost: Litestream and msgtrail die at once, without a word.
        os.kill(litestream, signal.SIGKILL)
        srv.process.send_signal(signal.SIGKILL)
        killed_at = time.monotonic()
        sender.join(60)
        srv.process.wait()
    finally:
        if srv.process.poll() is None:
            stop_server(srv)
    assert acked and acked[-1][1] > 20 * BATCH, "ingestion did not run while replicating"
    shutil.rmtree(live)

    restored = tmp_path / "restored"
    done = _cli("restore", "--from-replica", replica_env["MSGTRAIL_REPLICA_URL"],
                "--data-dir", str(restored), env=replica_env)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "1 export file(s) it does not hold marked expired" in done.stdout
    assert "no problems found" in done.stdout
    back = _events(restored / "msgtrail.db")
    acknowledged = acked[-1][1]
    assert back % BATCH == 0  # whole requests: a transaction is replicated whole or not
    assert back <= acknowledged + BATCH  # (one may be stored, its answer lost in the kill)
    lost = [when for when, total in acked if total > back]
    window = killed_at - lost[0] if lost else 0.0
    print(f"restored {back:,} of {acknowledged:,} acknowledged events; "
          f"loss window {window:.2f} s")
    assert window <= LOSS_WINDOW_BOUND, (back, acknowledged, window)

    # The restored service opens its webhook credentials and keys, and serves anew.
    again = start_server(restored, env=replica_env)
    try:
        with again.client(creds) as client:
            counts = client.get(f"/notifications/{message_id}",
                                params={"app_id": creds.app_id}).json()
            assert counts["successful"] + counts["received"] == back
            assert httpx.get(file_url.replace(srv.base_url, again.base_url)).status_code == 404
            fresh = export(client, creds, message_id).json()["csv_file_url"]
            data = download_when_ready(fresh)
            assert len(data) > 0
    finally:
        stop_server(again)


def test_a_replica_needs_the_secret_key_kept_apart(tmp_path: Path,
                                                   replica_env: dict[str, str]) -> None:
    env = {k: v for k, v in replica_env.items() if k != "MSGTRAIL_SECRET_KEY"}
    refused = subprocess.run([*MSGTRAIL, "serve", "--data-dir", str(tmp_path), "--port", "0"],
                             capture_output=True, text=True, timeout=60,
                             env={**os.environ, **env})
    assert refused.returncode == 1 and "needs MSGTRAIL_SECRET_KEY" in refused.stderr


def test_sigterm_stops_litestream_after_serve(tmp_path: Path, replica_env: dict[str, str]
                                              ) -> None:
    srv = start_server(tmp_path, env=replica_env)
    [litestream] = _children(srv.process.pid)
    srv.process.send_signal(signal.SIGTERM)
    assert srv.process.wait(30) == 0
    assert not Path(f"/proc/{litestream}").exists()  # stopped, and its status collected
    stop_server(srv)
