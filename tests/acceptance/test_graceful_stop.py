"""SIGTERM to a real `msgtrail worker` in the middle of an export: with no grace
period, the export is handed back (no file, no attempt spent) and another worker
writes it; with one, the export finishes before the process exits."""

from __future__ import annotations

import base64
import gzip
import json
import signal
import threading
import time
import uuid
from urllib.parse import urlsplit

import httpx

from msgtrail.testing.service import run_cli, start_server, stop_server
from msgtrail.testing.workload import ndjson_batches, send_ndjson
from tests.helpers import create_message, export, stop_processes, worker_process

RECIPIENTS = 1_000_000


def _state(client: httpx.Client, app_id: str, message_id: str, export_id: str) -> dict:  # type: ignore[type-arg]
    return client.get(f"/notifications/{message_id}/export_events/{export_id}",
                      params={"app_id": app_id}).json()


def _running(client: httpx.Client, app_id: str, message_id: str, export_id: str) -> None:
    deadline = time.monotonic() + 60
    while _state(client, app_id, message_id, export_id)["state"] != "running":
        assert time.monotonic() < deadline
        time.sleep(0.01)


def test_sigterm_hands_an_export_back_or_lets_it_finish(tmp_path, backend) -> None:
    srv = start_server(tmp_path, "--workers", "0", backend=backend,
                       env={"MSGTRAIL_UPKEEP_QUIET_SECONDS": "3600",
                            "MSGTRAIL_UPKEEP_MAX_LAG_SECONDS": "3600"})
    workers = []
    try:
        creds = srv.create_app()
        with srv.client(creds) as client:
            message_id = create_message(client, creds)
            send_ndjson(client, message_id, creds.app_id,
                        ndjson_batches(RECIPIENTS, 10_000, int(time.time())), 2)
            answer = export(client, creds, message_id).json()
            export_id = answer["export_id"]
            def stopped_while_running(name: str, **env: str) -> str:
                """A worker told to stop once it runs the export: the export's state
                once it has exited."""
                process = worker_process(srv, name, **env)
                workers.append(process)
                _running(client, creds.app_id, message_id, export_id)
                process.send_signal(signal.SIGTERM)
                assert process.wait(timeout=30) == 0
                return str(_state(client, creds.app_id, message_id, export_id)["state"])

            # No grace: the export is handed back at once, and nothing is served.
            assert stopped_while_running("hasty", MSGTRAIL_SHUTDOWN_GRACE_SECONDS="0") == "queued"
            assert httpx.get(answer["csv_file_url"], follow_redirects=True).status_code == 404
            assert not backend.stored_files(srv.env, tmp_path)
            # With the default grace (25 s), the next worker finishes it before it exits.
            assert stopped_while_running("patient") == "ready"
            data = gzip.decompress(httpx.get(answer["csv_file_url"], follow_redirects=True,
                                             timeout=60).content)
            assert data.count(b"\n") - 1 == RECIPIENTS
    finally:
        stop_processes(workers)
        stop_server(srv)


def _job(srv, export_id: str) -> tuple[str, int]:  # type: ignore[no-untyped-def]
    """The export's state and attempts, read from the database behind the server."""
    from sqlalchemy import text

    with srv.database() as engine, engine.connect() as conn:
        state, attempts = conn.execute(text(
            "SELECT state, attempts FROM jobs WHERE export_id = :e"), {"e": export_id}).one()
        return str(state), int(attempts)


def test_serve_drains_with_503_then_a_second_sigterm_hurries(tmp_path, backend) -> None:
    """SIGTERM to `serve` running an export: for the delay its port answers 503 with
    Retry-After (readiness too, liveness not); a second SIGTERM during the export's
    grace period hands the export back at once."""
    srv = start_server(tmp_path, backend=backend,
                       env={"MSGTRAIL_SHUTDOWN_DELAY_SECONDS": "2",
                            "MSGTRAIL_EXPORT_CHUNK_DELAY": "1",  # 10 chunks: ≥ 10 s
                            "MSGTRAIL_UPKEEP_QUIET_SECONDS": "3600",
                            "MSGTRAIL_UPKEEP_MAX_LAG_SECONDS": "3600"})
    try:
        creds = srv.create_app()
        with srv.client(creds) as client:
            message_id = create_message(client, creds)
            send_ndjson(client, message_id, creds.app_id,
                        ndjson_batches(500_000, 10_000, int(time.time())), 2)
            export_id = export(client, creds, message_id).json()["export_id"]
            _running(client, creds.app_id, message_id, export_id)
            srv.process.send_signal(signal.SIGTERM)
            time.sleep(0.2)
            refused = client.post(f"/notifications/{message_id}/events",
                                  params={"app_id": creds.app_id}, json={"events": []})
            assert refused.status_code == 503 and refused.headers["retry-after"] == "5"
            assert "stopping" in refused.json()["errors"][0]
            assert httpx.get(f"{srv.base_url}/readyz").status_code == 503
            assert httpx.get(f"{srv.base_url}/livez").status_code == 200
        time.sleep(2.5)  # the port has closed; the export has its 25 s of grace
        assert srv.process.poll() is None
        told = time.monotonic()
        srv.process.send_signal(signal.SIGTERM)
        assert srv.process.wait(timeout=20) == 0
        assert time.monotonic() - told < 10
        assert _job(srv, export_id) == ("queued", 0)  # handed back, no attempt spent
        assert not backend.stored_files(srv.env, tmp_path)
    finally:
        stop_server(srv)


def _events_stored(srv) -> int:  # type: ignore[no-untyped-def]
    from sqlalchemy import text

    with srv.database() as engine, engine.connect() as conn:
        return int(conn.execute(text(
            "SELECT coalesce(sum(events), 0) FROM activity_segments")).scalar_one())


def test_sigterm_mid_ingestion_keeps_every_acknowledged_event(tmp_path, backend) -> None:
    """Batches through the API and single-event provider webhooks (the group commit)
    from several senders; SIGTERM while they send. Every event answered 200 is
    stored, and nothing else: a request after the signal gets 503 or no connection."""
    srv = start_server(tmp_path, backend=backend)
    creds = srv.create_app()
    with srv.client(creds) as client:
        message_id = create_message(client, creds, channel="email")
    doc = json.loads(run_cli(tmp_path, "apps", "connect", creds.app_id, "postmark",
                             "--public-url", srv.base_url, "--json", env=srv.env))
    auth = base64.b64encode(f"msgtrail:{urlsplit(doc['url']).password}".encode()).decode()
    acked: list[int] = []
    answers: list[int] = []
    started = threading.Barrier(5)

    def batches() -> None:
        bodies = ndjson_batches(100_000, 2_000, int(time.time()))
        with httpx.Client(base_url=srv.base_url, timeout=30,
                          headers={"Authorization": f"Key {creds.api_key}"}) as sender:
            started.wait()
            for body in bodies:
                try:
                    r = sender.post(f"/notifications/{message_id}/events",
                                    params={"app_id": creds.app_id}, content=body,
                                    headers={"content-type": "application/x-ndjson"})
                except httpx.TransportError:
                    return
                answers.append(r.status_code)
                if r.status_code == 200:
                    acked.append(r.json()["accepted"])

    def webhooks() -> None:
        with httpx.Client(base_url=srv.base_url, timeout=30) as sender:
            started.wait()
            for _ in range(5_000):
                try:
                    r = sender.post(f"/webhooks/postmark/{creds.app_id}", json={
                        "RecordType": "Delivery", "MessageID": str(uuid.uuid4()),
                        "Recipient": "a@example.com", "DeliveredAt": "2026-01-02T03:04:05Z",
                        "Metadata": {"msgtrail_message_id": message_id,
                                     "msgtrail_subscription_id": str(uuid.uuid4())}},
                                    headers={"Authorization": f"Basic {auth}"})
                except httpx.TransportError:
                    return
                answers.append(r.status_code)
                if r.status_code == 200:
                    acked.append(1)

    senders = [threading.Thread(target=batches), threading.Thread(target=batches),
               *(threading.Thread(target=webhooks) for _ in range(2))]
    try:
        for sender in senders:
            sender.start()
        started.wait()
        time.sleep(1.5)
        srv.process.send_signal(signal.SIGTERM)
        for sender in senders:
            sender.join(60)
        assert srv.process.wait(30) == 0
        stored = _events_stored(srv)
    finally:
        stop_server(srv)  # (ended already: this releases its database and bucket)
    assert set(answers) <= {200, 503}, set(answers)
    assert sum(acked) > 10_000, "the senders did not get going before the signal"
    assert stored == sum(acked)
