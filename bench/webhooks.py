"""Webhook benchmark: single-event provider requests per second, answered only once
durable, from C concurrent senders; then every event checked in the database.

Starts `msgtrail serve` on a fresh data dir, connects the source, and sends N
requests of one event each (one recipient each), signed as the provider signs them.
Requests are built and signed before the clock starts; the senders are raw
keep-alive HTTP/1.1 connections, so that the client costs little of the 2 cores.

    python bench/webhooks.py [--source postmark] [--events 50000] [--senders 32]
    python bench/webhooks.py --scale     # a throwaway PostgreSQL database + SeaweedFS
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
import uuid
from typing import Any
from urllib.parse import urlsplit

import httpx

from msgtrail.testing.backends import add_bench_arguments
from msgtrail.testing.providers import Happened, Mailgun, OneSignal, Postmark, Twilio
from msgtrail.testing.service import bench_service, run_cli

EVENT = {"postmark": "delivered", "mailgun": "delivered", "twilio": "delivered",
         "onesignal": "delivered"}


def provider(source: str, api_key: str) -> Any:
    return {"postmark": Postmark, "mailgun": Mailgun, "twilio": Twilio,
            "onesignal": lambda: OneSignal(api_key=api_key)}[source]()


def connect_args(p: Any) -> list[str]:
    flags = {"password": "--password", "signing_key": "--signing-key",
             "auth_token": "--auth-token"}
    return [part for k, v in p.options().items() for part in (flags[k], v)]


def raw_request(host: str, path: str, headers: dict[str, str], body: bytes) -> bytes:
    lines = [f"POST {path} HTTP/1.1", f"Host: {host}", f"Content-Length: {len(body)}",
             *[f"{k}: {v}" for k, v in headers.items()]]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


async def sender(host: str, port: int, requests: list[bytes], statuses: list[int]) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    for request in requests:
        writer.write(request)
        head = await reader.readuntil(b"\r\n\r\n")
        statuses.append(int(head.split(b" ", 2)[1]))
        length = 0
        for line in head.split(b"\r\n"):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":")[1])
        await reader.readexactly(length)
    writer.close()


async def blast(base_url: str, requests: list[bytes], senders: int) -> list[int]:
    parts = urlsplit(base_url)
    statuses: list[int] = []
    shares = [requests[i::senders] for i in range(senders)]
    await asyncio.gather(*(sender(parts.hostname or "", parts.port or 80, share, statuses)
                           for share in shares))
    return statuses


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", default="postmark", choices=sorted(EVENT))
    parser.add_argument("--events", type=int, default=50_000)
    parser.add_argument("--senders", type=int, default=32)
    add_bench_arguments(parser)
    args = parser.parse_args()

    with bench_service(args) as (server, creds):
        app_id = creds["app_id"]
        p = provider(args.source, creds["api_key"])
        run_cli(server.data_dir, "apps", "connect", app_id, p.source, *connect_args(p),
                "--public-url", server.base_url, env=server.env)
        client = httpx.Client(base_url=server.base_url, timeout=120,
                              headers={"Authorization": f"Key {creds['api_key']}"})
        message_id = (str(uuid.uuid4()) if p.source == "onesignal" else client.post(
            "/notifications", json={"app_id": app_id, "target_channel": p.channel}
        ).json()["id"])
        now = int(time.time())
        happened = [Happened(EVENT[args.source], message_id, str(uuid.uuid4()), now - 60)
                    for _ in range(args.events)]
        host = urlsplit(server.base_url).netloc
        requests = [raw_request(host, c.path, c.headers, c.body)
                    for c in p.calls(app_id, happened, server.base_url)]
        # The server's own public URL must be what Twilio signed.
        started = time.perf_counter()
        statuses = asyncio.run(blast(server.base_url, requests, args.senders))
        elapsed = time.perf_counter() - started
        bad = [s for s in statuses if s != 200]
        # The first read after the last event folds what the worker has not yet.
        read_started = time.perf_counter()
        rows = client.get(f"/notifications/{message_id}", params={"app_id": app_id}
                          ).json()
        read_seconds = time.perf_counter() - read_started
        received = rows.get("received")
        print(json.dumps({
            "source": args.source, "events": args.events, "senders": args.senders,
            "processes": args.processes, "backend": "scale" if args.scale else "embedded",
            "seconds": round(elapsed, 2), "events_per_s": round(args.events / elapsed),
            "non_200": len(bad), "recipients_delivered_after": received,
            "first_read_s": round(read_seconds, 2)}))
        assert not bad, bad[:5]
        assert received == args.events, received


if __name__ == "__main__":
    main()
