"""GET /metrics of a real `msgtrail serve` (API only) beside a `msgtrail worker`
process: the counters move with what was sent, from both processes, and the
database's gauges are read at the scrape."""

from __future__ import annotations

import base64
import json
import uuid
from urllib.parse import urlsplit

import httpx
from prometheus_client.parser import text_string_to_metric_families

from msgtrail.testing.service import run_cli, start_server, stop_server
from tests.helpers import (
    create_message,
    download_when_ready,
    event,
    export,
    send_events,
    stop_processes,
    worker_process,
)


def _samples(base_url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    r = httpx.get(f"{base_url}/metrics")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(r.text) for s in family.samples}


def test_counters_agree_with_what_was_sent_across_processes(tmp_path, backend) -> None:
    srv = start_server(tmp_path, "--workers", "0", backend=backend)
    workers = []
    try:
        creds = srv.create_app()
        with srv.client(creds) as client:
            message_id = create_message(client, creds, channel="email")
            send_events(client, creds, message_id, [event(), event(), event()])
            # Postmark's webhook: one event accepted, one not attributed, one forged.
            doc = json.loads(run_cli(tmp_path, "apps", "connect", creds.app_id, "postmark",
                                     "--public-url", srv.base_url, "--json", env=srv.env))
            url = urlsplit(doc["url"])
            target = f"{srv.base_url}{url.path}"

            def postmark(password: str, meta: dict[str, str]) -> httpx.Response:
                auth = base64.b64encode(f"msgtrail:{password}".encode()).decode()
                return httpx.post(target, headers={"Authorization": f"Basic {auth}"}, json={
                    "RecordType": "Delivery", "MessageID": str(uuid.uuid4()),
                    "Metadata": meta, "Recipient": "a@example.com",
                    "DeliveredAt": "2026-01-02T03:04:05Z"})

            assert postmark(str(url.password), {
                "msgtrail_message_id": message_id,
                "msgtrail_subscription_id": str(uuid.uuid4())}).status_code == 200
            assert postmark(str(url.password), {}).json()["rejected"] == 1
            assert postmark("guess", {}).status_code == 401
            queued = export(client, creds, message_id)  # no worker yet: it waits
            before = _samples(srv.base_url)
            assert before[("msgtrail_export_jobs", (("state", "queued"),))] == 1
            assert before[("msgtrail_export_oldest_queued_seconds", ())] >= 0
            workers.append(worker_process(srv, "worker"))  # writes its own counters
            download_when_ready(queued.json()["csv_file_url"])
        after = _samples(srv.base_url)
    finally:
        stop_processes(workers)
        stop_server(srv)
    assert after[("msgtrail_events_accepted_total", (("source", "api"),))] == 3
    assert after[("msgtrail_events_accepted_total", (("source", "postmark"),))] == 1
    assert after[("msgtrail_events_rejected_total",
                  (("reason", "not attributed"), ("source", "postmark")))] == 1
    assert after[("msgtrail_webhook_signature_failures_total",
                  (("provider", "postmark"),))] == 1
    assert after[("msgtrail_group_commit_deliveries_count", ())] >= 1
    # The export ran in the worker process; the API process shows it.
    assert after[("msgtrail_export_jobs_total", (("kind", "export"), ("outcome", "ready")))] == 1
    assert after[("msgtrail_export_seconds_count", (("kind", "export"),))] == 1
    assert after[("msgtrail_export_jobs", (("state", "queued"),))] == 0
    assert any(name == "msgtrail_process_resident_memory_bytes" and value > 0
               for (name, _), value in after.items())
    # The forged Postmark request, refused 401, from the API process.
    assert after[("msgtrail_http_errors_total", (("status", "401"),))] == 1
    # Each process's pool, sampled every 5 s: the API process's at least.
    assert any(name == "msgtrail_db_connections_in_use" for name, _ in after)
    # Nothing overdue for retention, no completion webhook waiting.
    assert after[("msgtrail_retention_overdue_seconds", ())] == 0
    assert after[("msgtrail_completion_webhooks_pending", ())] == 0
    # Bounded labels: no app or message id anywhere.
    text = str(after)
    assert creds.app_id not in text and message_id not in text
