"""Many API and worker processes on one database and one store."""

from __future__ import annotations

import gzip
import signal
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from msgtrail.testing.service import start_server, stop_server
from tests.helpers import (
    FileWatch,
    create_message,
    event,
    export,
    export_status,
    send_ndjson,
    stop_processes,
    wait_for,
    worker_process,
)


def test_concurrent_exports_at_two_api_processes_start_one(tmp_path, backend) -> None:
    first = start_server(tmp_path, "--workers", "0", backend=backend)
    second = start_server(tmp_path, "--workers", "0", peer_of=first)
    try:
        apps = [first.create_app(f"app-{i}", account="racing") for i in range(2)]
        with first.client(apps[0]) as c0, first.client(apps[1]) as c1:
            messages = [(creds, create_message(client, creds))
                        for creds, client in ((apps[0], c0), (apps[1], c1)) for _ in range(5)]
        barrier = threading.Barrier(len(messages))

        def fire(i: int) -> httpx.Response:
            creds, message_id = messages[i]
            srv = (first, second)[i % 2]
            with srv.client(creds) as client:
                barrier.wait()
                return export(client, creds, message_id)

        with ThreadPoolExecutor(len(messages)) as pool:
            answers = list(pool.map(fire, range(len(messages))))
        statuses = sorted(r.status_code for r in answers)
        # Ten different exports of one account, raced at two processes: one starts.
        assert statuses == [200] + [429] * (len(messages) - 1)
        assert all(int(r.headers["Retry-After"]) >= 1 for r in answers if r.status_code == 429)
    finally:
        stop_server(second)
        stop_server(first)


RECIPIENTS = 1_000_000


@pytest.mark.parametrize("backend", ["scale"], indirect=True)
def test_kill_9_at_scale_two_apis_two_workers(tmp_path, backend) -> None:
    """PostgreSQL + S3: kill -9 the worker holding a 1,000,000-recipient export mid-way;
    the other finishes it; the presigned URL handed out before serves the whole file."""
    api_1 = start_server(tmp_path, "--workers", "0", backend=backend)
    api_2 = start_server(tmp_path, "--workers", "0", peer_of=api_1)
    workers = []
    try:
        creds = api_1.create_app()
        subs = sorted(str(uuid.uuid4()) for _ in range(RECIPIENTS))
        with api_1.client(creds) as c1, api_2.client(creds) as c2:
            message_id = create_message(c1, creds)
            half = RECIPIENTS // 2
            with ThreadPoolExecutor(2) as pool:  # both API processes ingest
                list(pool.map(lambda job: send_ndjson(job[0], creds, message_id, job[1]),
                              [(c1, [event(s, "sent") for s in subs[:half]]),
                               (c2, [event(s, "sent") for s in subs[half:]])]))
            # The first worker writes slowly, so that it is killed mid-way.
            workers.append(worker_process(api_1, "worker-1", MSGTRAIL_EXPORT_CHUNK_DELAY="1"))
            r = export(c2, creds, message_id)
            url, export_id = r.json()["csv_file_url"], r.json()["export_id"]
            assert url.startswith(backend.seaweed.endpoint)  # the store serves the bytes

            with FileWatch(url) as watch:
                wait_for(lambda: export_status(c1, creds, message_id, export_id)
                         .get("rows_written", 0) > 0, timeout=180)
                workers.append(worker_process(api_1, "worker-2"))
                workers[0].send_signal(signal.SIGKILL)
                workers[0].wait()
                assert export_status(c1, creds, message_id, export_id)["state"] == "running"
                wait_for(lambda: export_status(c2, creds, message_id, export_id)
                         ["state"] == "ready", timeout=180)
                wait_for(lambda: watch.file, timeout=60)
            status = export_status(c1, creds, message_id, export_id)
            assert status["attempts"] == 2 and status["rows_written"] == RECIPIENTS

        # Before the whole file, only NoSuchKey (the watch fails on anything else).
        assert watch.seen[0] == 404 and watch.seen[-1] == 200
        lines = gzip.decompress(watch.file).decode().splitlines()
        assert len(lines) == RECIPIENTS + 1
        assert [line.split(",", 2)[1] for line in lines[1:]] == subs
        assert backend.pending_uploads(api_1.env, tmp_path) == 0
    finally:
        stop_processes(workers)
        stop_server(api_2)
        stop_server(api_1)
