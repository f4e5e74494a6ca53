"""Building blocks for tests: messages and events sent through the public API."""

from __future__ import annotations

import json
import time
import uuid

import httpx

from tests.conftest import AppCreds


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


def download_when_ready(url: str, timeout: float = 60) -> bytes:
    """Poll an export URL until it serves the file; every earlier answer must be S3's
    404 NoSuchKey."""
    def ready() -> bytes | None:
        r = httpx.get(url)
        if r.status_code == 200:
            return r.content
        assert r.status_code == 404 and b"<Code>NoSuchKey</Code>" in r.content, r.text
        return None
    return wait_for(ready, timeout)
