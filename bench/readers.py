"""Readers benchmark: many clients reading a message's counters the moment its events
are accepted, as a dashboard and clients polling during a send do.

Starts `msgtrail serve`, sends 2R events for R push recipients (every `sent`, then every
`delivered`) as NDJSON, and the moment the last is accepted (the counters pending), N
clients ask for the message at once (`GET /notifications/{id}`). Reports when the first
and the last answered, and the serve process's peak RSS before and after; checks that
every answer counts every recipient.

    python bench/readers.py [--recipients 1000000] [--readers 8]
    python bench/readers.py --scale     # a throwaway PostgreSQL database + SeaweedFS + Redis
"""

from __future__ import annotations

import argparse
import json
import time
from concurrent.futures import ThreadPoolExecutor

import httpx

from msgtrail.testing.backends import add_bench_arguments
from msgtrail.testing.service import bench_service, peak_rss_mb
from msgtrail.testing.workload import ndjson_batches, send_ndjson


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipients", type=int, default=1_000_000)
    parser.add_argument("--readers", type=int, default=8)
    parser.add_argument("--batch", type=int, default=10_000)
    add_bench_arguments(parser)
    args = parser.parse_args()
    payloads = ndjson_batches(args.recipients, args.batch, int(time.time()))

    with bench_service(args) as (server, creds):
        params = {"app_id": creds["app_id"]}
        client = httpx.Client(base_url=server.base_url, timeout=600,
                              headers={"Authorization": f"Key {creds['api_key']}"})
        message_id = client.post("/notifications", json={
            **params, "target_channel": "push", "name": "readers"}).json()["id"]

        accepted = send_ndjson(client, message_id, creds["app_id"], payloads, 2)
        assert accepted == 2 * args.recipients, accepted
        before = peak_rss_mb(server.process.pid)
        started = time.perf_counter()

        def read(_: int) -> tuple[float, int]:
            r = client.get(f"/notifications/{message_id}", params=params)
            r.raise_for_status()
            return time.perf_counter() - started, int(r.json()["received"])

        with ThreadPoolExecutor(args.readers) as pool:
            answers = list(pool.map(read, range(args.readers)))
        assert {n for _, n in answers} == {args.recipients}, answers
        print(json.dumps({
            "backend": "scale" if args.scale else "embedded", "recipients": args.recipients,
            "readers": args.readers,
            "first_answer_s": round(min(t for t, _ in answers), 2),
            "last_answer_s": round(max(t for t, _ in answers), 2),
            "serve_peak_rss_before_mb": round(before),
            "serve_peak_rss_mb": round(peak_rss_mb(server.process.pid))}))


if __name__ == "__main__":
    main()
