"""Activity as a delivery pipeline sends it, for benchmarks: every recipient `sent`
(with its attributes), then `delivered`, as NDJSON request bodies."""

from __future__ import annotations

import json
import uuid
from concurrent.futures import ThreadPoolExecutor

import httpx


def ndjson_batches(recipients: int, batch: int, now: int) -> list[bytes]:
    """Twice `recipients` events in bodies of `batch` events, all sends before deliveries."""
    subs = [str(uuid.uuid4()) for _ in range(recipients)]
    lines = [json.dumps({"subscription_id": s, "event": "sent", "timestamp": now - 600,
                         "onesignal_id": str(uuid.uuid4()), "external_id": f"user-{i}",
                         "device_type": "Android"}).encode() for i, s in enumerate(subs)]
    lines += [json.dumps({"subscription_id": s, "event": "delivered",
                          "timestamp": now - 590}).encode() for s in subs]
    return [b"\n".join(lines[i:i + batch]) for i in range(0, len(lines), batch)]


def send_ndjson(client: httpx.Client, message_id: str, app_id: str, bodies: list[bytes],
                senders: int) -> int:
    """POST the bodies to the message's events from `senders` concurrent senders; the
    events accepted."""
    def send(body: bytes) -> int:
        r = client.post(f"/notifications/{message_id}/events", params={"app_id": app_id},
                        content=body, headers={"Content-Type": "application/x-ndjson"})
        r.raise_for_status()
        return int(r.json()["accepted"])

    with ThreadPoolExecutor(senders) as pool:
        return sum(pool.map(send, bodies))
