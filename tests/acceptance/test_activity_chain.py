"""A chain of activity exports, each given the previous one's cursor, holds every
accepted event exactly once: while two API processes ingest concurrently (their
transactions commit in any order), and when a worker is killed mid-export."""

from __future__ import annotations

import csv
import gzip
import io
import random
import signal
import threading
import uuid

import httpx

from msgtrail.testing.service import AppCreds, start_server, stop_server
from tests.helpers import (
    create_message,
    download_when_ready,
    event,
    send_events,
    send_ndjson,
    wait_for,
    worker_process,
)

Key = tuple[str, str, str]


def _start(client: httpx.Client, creds: AppCreds, cursor: str | None) -> dict[str, str]:
    r = client.post(f"/apps/{creds.app_id}/activity_exports",
                    json={"cursor": cursor} if cursor else {})
    assert r.status_code == 200, r.text
    return dict(r.json())


def _status(client: httpx.Client, creds: AppCreds, export_id: str) -> dict:  # type: ignore[type-arg]
    r = client.get(f"/apps/{creds.app_id}/activity_exports/{export_id}")
    assert r.status_code == 200, r.text
    return dict(r.json())


def _keys(data: bytes) -> list[Key]:
    rows = csv.DictReader(io.StringIO(gzip.decompress(data).decode(), newline=""))
    return [(r["message_id"], r["subscription_id"], r["event"]) for r in rows]


def _link(client: httpx.Client, creds: AppCreds, cursor: str | None) -> tuple[list[Key], str]:
    """One export of the chain, finished: its events and its next_cursor."""
    started = _start(client, creds, cursor)
    status = wait_for(lambda: (s := _status(client, creds, started["export_id"]))
                      ["state"] == "ready" and s, timeout=120)
    return _keys(download_when_ready(started["file_url"])), status["next_cursor"]


def test_exactly_once_while_two_api_processes_ingest(tmp_path, backend) -> None:
    api_1 = start_server(tmp_path, backend=backend)
    api_2 = start_server(tmp_path, "--workers", "0", peer_of=api_1)
    try:
        creds = api_1.create_app()
        accepted: set[Key] = set()
        lock = threading.Lock()
        stop = threading.Event()
        with api_1.client(creds) as c1, api_2.client(creds) as c2:
            messages = [create_message(c1, creds), create_message(c2, creds, "email")]
            subs = [str(uuid.uuid4()) for _ in range(20_000)]
            sent: list[dict] = []  # type: ignore[type-arg]

            def send(client: httpx.Client, seed: int) -> None:
                rng = random.Random(seed)
                while not stop.is_set():
                    message = rng.choice(messages)
                    batch = [event(rng.choice(subs), rng.choice(("sent", "delivered",
                                                                 "clicked")))
                             for _ in range(rng.randint(1, 80))]
                    with lock:  # and repeats of what either process already took
                        batch += [e for e in rng.sample(sent, min(len(sent), 5))
                                  if e["message"] == message]
                    r = send_events(client, creds, message,
                                    [{k: v for k, v in e.items() if k != "message"}
                                     for e in batch])
                    assert r.status_code == 200, r.text
                    with lock:
                        accepted.update((message, e["subscription_id"], e["event"])
                                        for e in batch)  # type: ignore[misc]
                        sent.extend({**e, "message": message} for e in batch[:5])
                    # Concurrency is the point, not volume: paced, the chain's links
                    # stay a few seconds each however fast the machine ingests.
                    stop.wait(0.05)

            senders = [threading.Thread(target=send, args=(c, seed))
                       for seed, c in enumerate((c1, c2, c1, c2))]
            for thread in senders:
                thread.start()
            chain: list[Key] = []
            cursor = None
            links = []
            try:
                for i in range(6):  # links while the senders run
                    keys, cursor = _link(c1 if i % 2 else c2, creds, cursor)
                    chain += keys
                    links.append(len(keys))
            finally:
                stop.set()
                for thread in senders:
                    thread.join()
            keys, cursor = _link(c1, creds, cursor)  # everything left
            chain += keys
            keys, _ = _link(c2, creds, cursor)
            assert keys == []

        assert len(accepted) > 1000
        assert sum(1 for n in links if n) >= 4, links  # the chain ran during ingestion
        assert len(chain) == len(set(chain)), "an event was exported twice"
        assert set(chain) == accepted
    finally:
        stop_server(api_2)
        stop_server(api_1)


RECIPIENTS = 120_000  # three chunks of the pipeline


def test_a_worker_killed_mid_export_leaves_the_chain_whole(api_only) -> None:
    srv, workers = api_only
    creds = srv.create_app()
    with srv.client(creds) as client:
        message_id = create_message(client, creds)
        subs = [str(uuid.uuid4()) for _ in range(RECIPIENTS)]
        send_ndjson(client, creds, message_id, [event(s, "sent") for s in subs])
        workers.append(worker_process(srv, "worker-1", MSGTRAIL_EXPORT_CHUNK_DELAY="3"))
        first = _start(client, creds, None)
        wait_for(lambda: _status(client, creds, first["export_id"])
                 .get("rows_written", 0) > 0)
        workers[0].send_signal(signal.SIGKILL)
        workers[0].wait()
        # Recorded after the killed attempt's snapshot, before the retry's.
        between = [str(uuid.uuid4()) for _ in range(50)]
        assert send_events(client, creds, message_id,
                           [event(s, "clicked") for s in between]).status_code == 200
        assert httpx.get(first["file_url"]).status_code == 404
        workers.append(worker_process(srv, "worker-2"))
        status = wait_for(lambda: (s := _status(client, creds, first["export_id"]))
                          ["state"] == "ready" and s, timeout=90)
        assert status["attempts"] == 2
        keys = _keys(download_when_ready(first["file_url"]))
        assert len(keys) == status["manifest"]["rows"] == RECIPIENTS + 50

        after = [str(uuid.uuid4()) for _ in range(20)]
        assert send_events(client, creds, message_id,
                           [event(s, "delivered") for s in [*after, *subs[:10]]]
                           ).status_code == 200
        more, _ = _link(client, creds, status["next_cursor"])
        assert sorted(more) == sorted((message_id, s, "delivered") for s in [*after, *subs[:10]])
        assert not set(more) & set(keys)
