"""Activity as a delivery pipeline sends it, for benchmarks, as NDJSON request bodies:
`simple`, every recipient `sent` (with its attributes), then `delivered`; `mix`, what a
real send looks like (`mixed_batches`)."""

from __future__ import annotations

import json
import random
import uuid
from collections.abc import Callable
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


FAILURES = ("InvalidRegistration", "NotRegistered", "MismatchSenderId",
            "Device token expired", "Payload too large, over 4096 bytes")


def mixed_batches(recipients: int, batch: int, now: int, seed: int = 1) -> list[bytes]:
    """A send as providers report it, in bodies of `batch` events: every recipient
    `sent` (with its attributes), in order; then each outcome, in no order: 95%
    `delivered`, 5% `failed` with a reason; then, later still and in no order, 10%
    `clicked` (up to hours after) and 1% `unsubscribed`. Each recipient's events land
    in different batches."""
    rng = random.Random(seed)
    subs = [str(uuid.UUID(int=rng.getrandbits(128), version=4)) for _ in range(recipients)]
    lines = [(f'{{"subscription_id": "{s}", "event": "sent", "timestamp": {now - 7200},'
              f' "onesignal_id": "{uuid.UUID(int=rng.getrandbits(128), version=4)}",'
              f' "external_id": "user-{i}", "device_type": "Android"}}').encode()
             for i, s in enumerate(subs)]
    order = list(range(recipients))
    rng.shuffle(order)
    for i in order:
        at = now - 7200 + 5 + rng.randrange(600)
        if rng.random() < 0.05:
            lines.append((f'{{"subscription_id": "{subs[i]}", "event": "failed",'
                          f' "timestamp": {at}, "failure_message": '
                          f'{json.dumps(rng.choice(FAILURES))}}}').encode())
        else:
            lines.append(f'{{"subscription_id": "{subs[i]}", "event": "delivered",'
                         f' "timestamp": {at}}}'.encode())
    rng.shuffle(order)
    for i in order[:recipients // 10]:
        lines.append(f'{{"subscription_id": "{subs[i]}", "event": "clicked",'
                     f' "timestamp": {now - rng.randrange(7000)}}}'.encode())
    for i in order[recipients // 10:recipients // 10 + recipients // 100]:
        lines.append(f'{{"subscription_id": "{subs[i]}", "event": "unsubscribed",'
                     f' "timestamp": {now - rng.randrange(7000)}}}'.encode())
    return [b"\n".join(lines[i:i + batch]) for i in range(0, len(lines), batch)]


def _events(bodies: list[bytes]) -> int:
    return sum(body.count(b"\n") + 1 for body in bodies)


# Each workload's bodies and their events, for (recipients, batch, now).
WORKLOADS: dict[str, Callable[[int, int, int], tuple[list[bytes], int]]] = {
    "simple": lambda r, b, t: (ndjson_batches(r, b, t), 2 * r),
    "mix": lambda r, b, t: ((bodies := mixed_batches(r, b, t)), _events(bodies)),
}


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
