"""A worker killed mid-export: another takes the job over once the lease expires, and
the URL handed out before the crash serves the complete file, never a partial one."""

from __future__ import annotations

import gzip
import signal
import uuid

import httpx

from tests.helpers import (
    FileWatch,
    create_message,
    download_when_ready,
    event,
    export,
    export_status,
    send_ndjson,
    wait_for,
    wait_until_ready,
    worker_process,
)

RECIPIENTS = 120_000  # three chunks of the pipeline


def test_kill_9_mid_export_then_another_worker_finishes(api_only, tmp_path, backend) -> None:
    srv, workers = api_only
    creds = srv.create_app()
    with srv.client(creds) as client:
        message_id = create_message(client, creds)
        subs = sorted(str(uuid.uuid4()) for _ in range(RECIPIENTS))
        send_ndjson(client, creds, message_id, [event(s, "sent") for s in subs])
        # The first worker writes slowly: one chunk, then a 3 s pause per chunk.
        workers.append(worker_process(srv, "worker-1", MSGTRAIL_EXPORT_CHUNK_DELAY="3"))
        r = export(client, creds, message_id)
        url, export_id = r.json()["csv_file_url"], r.json()["export_id"]
        with FileWatch(url) as watch:
            wait_for(lambda: export_status(client, creds, message_id, export_id)
                     .get("rows_written", 0) > 0)
            workers[0].send_signal(signal.SIGKILL)
            workers[0].wait()
            assert export_status(client, creds, message_id, export_id)["state"] == "running"
            workers.append(worker_process(srv, "worker-2"))
            wait_for(lambda: export_status(client, creds, message_id, export_id)
                     ["state"] == "ready", timeout=90)
            wait_for(lambda: watch.file, timeout=10)
        status = export_status(client, creds, message_id, export_id)
        assert status["attempts"] == 2 and status["rows_written"] == RECIPIENTS
        # The upload the killed worker left was aborted by the one that took over.
        if backend.name == "scale":
            assert backend.pending_uploads(srv.env, tmp_path) == 0

    # Before the whole file, only NoSuchKey; the file, then and later, is whole.
    assert watch.seen[0] == 404 and watch.seen[-1] == 200
    for data in (watch.file, httpx.get(url).content):
        lines = gzip.decompress(data).decode().splitlines()
        assert len(lines) == RECIPIENTS + 1
        assert [line.split(",")[1] for line in lines[1:]] == subs


def test_a_job_that_keeps_failing_is_marked_failed_and_frees_the_account(
        api_only, tmp_path, backend) -> None:
    srv, workers = api_only
    creds = srv.create_app()
    with srv.client(creds) as client:
        message_id = create_message(client, creds)
        send_ndjson(client, creds, message_id, [event()])
        r = export(client, creds, message_id)
        url, export_id = r.json()["csv_file_url"], r.json()["export_id"]
        # The store breaks after the job was accepted: every attempt fails to write.
        backend.break_storage(srv.env, tmp_path)
        workers.append(worker_process(srv, "worker", MSGTRAIL_MAX_ATTEMPTS="2"))
        status = wait_for(lambda: (s := export_status(client, creds, message_id, export_id))
                          ["state"] == "failed" and s, timeout=30)
        assert status["attempts"] == 2 and "error" in status and "finished_at" in status
        assert httpx.get(url).status_code == 404
        # A failed export does not hold the account's one export slot.
        backend.mend_storage(srv.env, tmp_path)
        r = export(client, creds, message_id)
        assert r.status_code == 200
        assert download_when_ready(r.json()["csv_file_url"])


def test_a_stopping_worker_hands_its_job_back(api_only) -> None:
    """SIGTERM: the running job is queued again at once, its attempt not counted, and
    another worker writes it whole."""
    srv, workers = api_only
    creds = srv.create_app()
    with srv.client(creds) as client:
        message_id = create_message(client, creds)
        send_ndjson(client, creds, message_id, [event() for _ in range(RECIPIENTS)])
        workers.append(worker_process(srv, "worker-1", MSGTRAIL_EXPORT_CHUNK_DELAY="30",
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
        workers.append(worker_process(srv, "worker-2"))
        assert wait_until_ready(client, creds, message_id, export_id)["attempts"] == 1
        lines = gzip.decompress(httpx.get(url, timeout=60).content).splitlines()
        assert len(lines) == RECIPIENTS + 1
