"""A worker killed mid-export: another takes the job over once the lease expires, and
the URL handed out before the crash serves the complete file, never a partial one."""

from __future__ import annotations

import gzip
import os
import signal
import subprocess
import threading
import uuid

import httpx

from tests.conftest import MSGTRAIL, start_server, stop_server
from tests.helpers import create_message, event, export, export_status, send_ndjson, wait_for

RECIPIENTS = 120_000  # three chunks of the pipeline


def _worker(srv, name: str, **env: str) -> subprocess.Popen:
    """A `msgtrail worker` process on the server's database and store."""
    log = open(srv.data_dir / f"{name}.log", "w")  # noqa: SIM115 - the process's log
    return subprocess.Popen([*MSGTRAIL, "worker", "--data-dir", str(srv.data_dir)],
                            stdout=log, stderr=subprocess.STDOUT,
                            env={**os.environ, **srv.env, "MSGTRAIL_LEASE_SECONDS": "2",
                                 "MSGTRAIL_POLL_INTERVAL": "0.1", **env})


def test_kill_9_mid_export_then_another_worker_finishes(tmp_path, backend) -> None:
    srv = start_server(tmp_path, "--workers", "0", backend=backend)
    workers: list[subprocess.Popen] = []
    try:
        creds = srv.create_app()
        with srv.client(creds) as client:
            message_id = create_message(client, creds)
            subs = sorted(str(uuid.uuid4()) for _ in range(RECIPIENTS))
            send_ndjson(client, creds, message_id, [event(s, "sent") for s in subs])
            # The first worker writes slowly: one chunk, then a 3 s pause per chunk.
            workers.append(_worker(srv, "worker-1", MSGTRAIL_EXPORT_CHUNK_DELAY="3"))
            r = export(client, creds, message_id)
            url, export_id = r.json()["csv_file_url"], r.json()["export_id"]

            seen: list[int] = []
            complete: list[bytes] = []
            stop = threading.Event()

            def poll() -> None:
                while not stop.is_set():
                    got = httpx.get(url)
                    seen.append(got.status_code)
                    if got.status_code == 200:
                        complete.append(got.content)
                    else:
                        assert got.status_code == 404 and b"NoSuchKey" in got.content

            poller = threading.Thread(target=poll)
            poller.start()
            try:
                wait_for(lambda: export_status(client, creds, message_id, export_id)
                         .get("rows_written", 0) > 0)
                workers[0].send_signal(signal.SIGKILL)
                workers[0].wait()
                assert export_status(client, creds, message_id, export_id)["state"] == "running"
                workers.append(_worker(srv, "worker-2"))
                wait_for(lambda: export_status(client, creds, message_id, export_id)
                         ["state"] == "ready", timeout=90)
                wait_for(lambda: complete, timeout=10)
            finally:
                stop.set()
                poller.join()
            status = export_status(client, creds, message_id, export_id)
            assert status["attempts"] == 2 and status["rows_written"] == RECIPIENTS
            # The upload the killed worker left was aborted by the one that took over.
            if backend.name == "scale":
                assert backend.pending_uploads(srv.env, tmp_path) == 0

        assert 404 in seen and 200 in seen
        # Every 200 served the whole file; before it, only NoSuchKey.
        assert seen.index(200) > 0 and set(seen[seen.index(200):]) == {200}
        for data in complete:
            lines = gzip.decompress(data).decode().splitlines()
            assert len(lines) == RECIPIENTS + 1
            assert [line.split(",")[1] for line in lines[1:]] == subs
    finally:
        for w in workers:
            if w.poll() is None:
                w.terminate()
                w.wait(30)
        stop_server(srv)


def test_a_job_that_keeps_failing_is_marked_failed_and_frees_the_account(tmp_path,
                                                                         backend) -> None:
    srv = start_server(tmp_path, "--workers", "0", backend=backend)
    worker = None
    try:
        creds = srv.create_app()
        with srv.client(creds) as client:
            message_id = create_message(client, creds)
            send_ndjson(client, creds, message_id, [event()])
            r = export(client, creds, message_id)
            url, export_id = r.json()["csv_file_url"], r.json()["export_id"]
            # The store breaks after the job was accepted: every attempt fails to write.
            backend.break_storage(srv.env, tmp_path)
            worker = _worker(srv, "worker", MSGTRAIL_MAX_ATTEMPTS="2")
            status = wait_for(lambda: (s := export_status(client, creds, message_id, export_id))
                              ["state"] == "failed" and s, timeout=30)
            assert status["attempts"] == 2 and "error" in status and "finished_at" in status
            assert httpx.get(url).status_code == 404
            # A failed export does not hold the account's one export slot.
            backend.mend_storage(srv.env, tmp_path)
            r = export(client, creds, message_id)
            assert r.status_code == 200
            download = wait_for(lambda: httpx.get(r.json()["csv_file_url"]).status_code == 200)
            assert download
    finally:
        if worker is not None:
            worker.terminate()
            worker.wait(30)
        stop_server(srv)


def test_a_stopping_worker_hands_its_job_back(tmp_path, backend) -> None:
    """SIGTERM: the running job is queued again at once, its attempt not counted, and
    another worker writes it whole."""
    srv = start_server(tmp_path, "--workers", "0", backend=backend)
    workers: list[subprocess.Popen] = []
    try:
        creds = srv.create_app()
        with srv.client(creds) as client:
            message_id = create_message(client, creds)
            send_ndjson(client, creds, message_id, [event() for _ in range(RECIPIENTS)])
            workers.append(_worker(srv, "worker-1", MSGTRAIL_EXPORT_CHUNK_DELAY="30",
                                   MSGTRAIL_LEASE_SECONDS="600"))
            r = export(client, creds, message_id)
            url, export_id = r.json()["csv_file_url"], r.json()["export_id"]
            wait_for(lambda: export_status(client, creds, message_id, export_id)
                     .get("rows_written", 0) > 0)
            workers[0].send_signal(signal.SIGTERM)
            assert workers[0].wait(30) == 0
            # Handed back at once, though its 600 s lease had long to run.
            status = export_status(client, creds, message_id, export_id)
            assert status["state"] == "queued" and status["attempts"] == 0
            assert httpx.get(url).status_code == 404
            workers.append(_worker(srv, "worker-2"))
            wait_for(lambda: export_status(client, creds, message_id, export_id)
                     ["state"] == "ready", timeout=60)
            assert export_status(client, creds, message_id, export_id)["attempts"] == 1
            lines = gzip.decompress(httpx.get(url, timeout=60).content).splitlines()
            assert len(lines) == RECIPIENTS + 1
    finally:
        for w in workers:
            if w.poll() is None:
                w.kill()
                w.wait()
        stop_server(srv)
