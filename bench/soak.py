"""Soak benchmark: minutes of ingestion and exports together, as a busy account lives
them. Is `serve`'s memory flat, and does ingestion keep its pace as messages grow?

Starts `msgtrail serve`; S senders each send push messages of R recipients (every
`sent`, then every `delivered`, as NDJSON), one after another, paced to a total of
RATE events/s (0: as fast as they can); meanwhile one exporter loops, exporting the
message that received events last and waiting for its file. Every 5 s it samples the
serve process's resident memory. Reports, per minute: events accepted per second,
exports finished (and how long the slowest took), and `serve`'s RSS at the minute's
end; and the peak.

    python bench/soak.py [--seconds 300] [--senders 4] [--rate 100000] [--scale]
"""

from __future__ import annotations

import argparse
import json
import threading
import time
from pathlib import Path

import httpx

from msgtrail.testing.backends import add_bench_arguments
from msgtrail.testing.service import bench_service, peak_rss_mb
from msgtrail.testing.workload import ndjson_batches


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=300)
    parser.add_argument("--senders", type=int, default=4)
    parser.add_argument("--rate", type=int, default=100_000, help="events/s in all; 0: no pacing")
    parser.add_argument("--recipients", type=int, default=250_000, help="per message")
    parser.add_argument("--batch", type=int, default=10_000)
    add_bench_arguments(parser)
    args = parser.parse_args()

    with bench_service(args) as (server, creds):
        params = {"app_id": creds["app_id"]}
        headers = {"Authorization": f"Key {creds['api_key']}"}
        started = time.monotonic()
        deadline = started + args.seconds
        accepted: list[tuple[float, int]] = []  # (when, events)
        exports: list[tuple[float, float]] = []  # (when finished, seconds taken)
        samples: list[tuple[float, float]] = []  # (when, RSS MB)
        latest: dict[str, str] = {}
        lock = threading.Lock()

        def sender(k: int) -> None:
            client = httpx.Client(base_url=server.base_url, timeout=600, headers=headers)
            pace = args.batch / (args.rate / args.senders) if args.rate else 0.0
            due = time.monotonic()
            while time.monotonic() < deadline:
                message_id = client.post("/notifications", json={
                    **params, "target_channel": "push", "name": f"soak-{k}"}).json()["id"]
                for body in ndjson_batches(args.recipients, args.batch, int(time.time())):
                    if time.monotonic() >= deadline:
                        return
                    due += pace
                    time.sleep(max(0.0, due - time.monotonic()))
                    r = client.post(f"/notifications/{message_id}/events", params=params,
                                    content=body,
                                    headers={"Content-Type": "application/x-ndjson"})
                    r.raise_for_status()
                    with lock:
                        accepted.append((time.monotonic() - started, r.json()["accepted"]))
                        latest["message_id"] = message_id

        def exporter() -> None:
            client = httpx.Client(base_url=server.base_url, timeout=600, headers=headers)
            while time.monotonic() < deadline:
                message_id = latest.get("message_id")
                if message_id is None:
                    time.sleep(0.5)
                    continue
                asked = time.monotonic()
                r = client.post(f"/notifications/{message_id}/export_events", params=params)
                if r.status_code == 429:  # one export at a time per account
                    time.sleep(float(r.headers.get("Retry-After", "1")))
                    continue
                r.raise_for_status()
                status = f"/notifications/{message_id}/export_events/{r.json()['export_id']}"
                while client.get(status, params=params).json()["state"] != "ready":
                    time.sleep(0.05)
                exports.append((time.monotonic() - started, time.monotonic() - asked))

        threads = [threading.Thread(target=sender, args=(k,)) for k in range(args.senders)]
        threads.append(threading.Thread(target=exporter))
        for t in threads:
            t.start()
        while time.monotonic() < deadline:
            samples.append((time.monotonic() - started, rss_mb(server.process.pid)))
            time.sleep(5)
        for t in threads:
            t.join()
        peak = peak_rss_mb(server.process.pid)

    minutes = []
    for m in range(0, args.seconds, 60):
        events = sum(n for at, n in accepted if m <= at < m + 60)
        done = [took for at, took in exports if m <= at < m + 60]
        minutes.append({
            "minute": m // 60 + 1, "events_per_s": round(events / 60),
            "exports": len(done), "slowest_export_s": round(max(done, default=0), 2),
            "serve_rss_mb": round([mb for at, mb in samples if at < m + 60][-1])})
    print(json.dumps({"backend": "scale" if args.scale else "embedded",
                      "senders": args.senders, "rate": args.rate, "seconds": args.seconds,
                      "events": sum(n for _, n in accepted), "minutes": minutes,
                      "serve_peak_rss_mb": round(peak)}))


if __name__ == "__main__":
    main()
