"""Building blocks for tests: messages and events sent through the public API."""

from __future__ import annotations

import json
import os
import subprocess
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self

import httpx

from msgtrail.testing.service import MSGTRAIL, AppCreds


def create_message(client: httpx.Client, creds: AppCreds, channel: str = "push",
                   name: str = "test message") -> str:
    r = client.post("/notifications", json={
        "app_id": creds.app_id, "name": name, "contents": {"en": "Hello"},
        "target_channel": channel})
    assert r.status_code == 200, r.text
    return r.json()["id"]


def event(sub: str | None = None, name: str = "sent", ts: int | str | None = None,
          **extra: object) -> dict[str, object]:
    return {"subscription_id": sub or str(uuid.uuid4()), "event": name,
            "timestamp": int(time.time()) - 3600 if ts is None else ts,
            **extra}


def send_events(client: httpx.Client, creds: AppCreds, message_id: str,
                events: list[dict[str, object]]) -> httpx.Response:
    return client.post(f"/notifications/{message_id}/events",
                       params={"app_id": creds.app_id}, json={"events": events})


def send_ndjson(client: httpx.Client, creds: AppCreds, message_id: str,
                events: list[dict[str, object]], batch: int = 10_000) -> None:
    """Send many events as NDJSON, `batch` per request."""
    for i in range(0, len(events), batch):
        body = "\n".join(json.dumps(e) for e in events[i:i + batch])
        r = client.post(f"/notifications/{message_id}/events", params={"app_id": creds.app_id},
                        content=body, headers={"content-type": "application/x-ndjson"})
        assert r.status_code == 200, r.text


def iso(ts: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


def wait_for(predicate, timeout: float = 60, interval: float = 0.05):  # type: ignore[no-untyped-def]
    """Poll until predicate() is truthy; returns its value, fails the test on timeout."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(interval)


def export(client: httpx.Client, creds: AppCreds, message_id: str, **params: str) -> httpx.Response:
    return client.post(f"/notifications/{message_id}/export_events",
                       params={"app_id": creds.app_id, **params})


def export_status(client: httpx.Client, creds: AppCreds, message_id: str,
                  export_id: str) -> dict:
    r = client.get(f"/notifications/{message_id}/export_events/{export_id}",
                   params={"app_id": creds.app_id})
    assert r.status_code == 200, r.text
    return r.json()


def wait_until_ready(client: httpx.Client, creds: AppCreds, message_id: str,
                     export_id: str) -> dict:
    """The job's status once it is `ready`. The file is published before the job is
    marked ready, so a downloaded file does not mean the status already says so."""
    return wait_for(lambda: (s := export_status(client, creds, message_id, export_id))
                    ["state"] == "ready" and s)


def file_if_ready(url: str, seen: list[int] | None = None) -> bytes | None:
    """The file at an export URL, or None while it answers S3's 404 NoSuchKey; any
    other answer fails the test. Each status is appended to `seen` when given."""
    r = httpx.get(url, timeout=60)
    if seen is not None:
        seen.append(r.status_code)
    if r.status_code == 200:
        return r.content
    assert r.status_code == 404 and b"<Code>NoSuchKey</Code>" in r.content, r.text
    return None


def download_when_ready(url: str, timeout: float = 60) -> bytes:
    """Poll an export URL until it serves the file; every earlier answer must be S3's
    404 NoSuchKey."""
    return wait_for(lambda: file_if_ready(url), timeout)


def worker_process(srv, name: str, **env: str) -> subprocess.Popen:  # type: ignore[no-untyped-def]
    """A `msgtrail worker` process on a server's database and store, quick to take over
    a job (2 s leases) and to find one (0.1 s polls)."""
    log = open(srv.data_dir / f"{name}.log", "w")  # noqa: SIM115 - the process's log
    return subprocess.Popen([*MSGTRAIL, "worker", "--data-dir", str(srv.data_dir)],
                            stdout=log, stderr=subprocess.STDOUT,
                            env={**os.environ, **srv.env, "MSGTRAIL_LEASE_SECONDS": "2",
                                 "MSGTRAIL_POLL_INTERVAL": "0.1", **env})


def stop_processes(processes: list[subprocess.Popen]) -> None:
    for process in processes:
        if process.poll() is None:
            process.kill()
            process.wait()


class FileWatch:
    """Polls a file URL on a thread, from entering the block until it first serves the
    file (or the block ends), recording every status. Before the file, only S3's 404
    NoSuchKey is allowed; anything else fails the test when the block ends."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.seen: list[int] = []
        self.file: bytes | None = None
        self._error: BaseException | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)

    def _poll(self) -> None:
        try:
            while not self._stop.is_set():
                self.file = file_if_ready(self.url, self.seen)
                if self.file is not None:
                    return
                self._stop.wait(0.1)
        except BaseException as exc:  # noqa: BLE001 - raised in the test's thread, on exit
            self._error = exc

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        if self._error is not None:
            raise self._error


class Receiver:
    """A webhook receiver on loopback: answers each POST with the next status of its
    script (the last one from then on) and records what it was sent."""

    def __init__(self, statuses: list[int]) -> None:
        self.statuses = statuses
        self.requests: list[tuple[dict[str, str], bytes]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.requests.append((dict(self.headers), body))
                status = receiver.statuses[min(len(receiver.requests),
                                               len(receiver.statuses)) - 1]
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/msgtrail"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def wait(self, count: int, timeout: float = 20) -> list[tuple[dict[str, str], bytes]]:
        deadline = time.monotonic() + timeout
        while len(self.requests) < count:
            assert time.monotonic() < deadline, f"{len(self.requests)} of {count} requests"
            time.sleep(0.02)
        return self.requests
