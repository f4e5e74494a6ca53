"""Ingest benchmark: events/s accepted through the HTTP API, then every event checked.

Starts `msgtrail serve` on a fresh data dir, sends N events as NDJSON, B per request
(`sent` for N/2 recipients, then `delivered` for each), and reads the message back
until its counters show every recipient. Bodies are encoded before the clock starts.

    python bench/ingest.py [--events 1000000] [--batch 10000] [--connections 2]
    python bench/ingest.py --scale     # a throwaway PostgreSQL database + SeaweedFS
    python bench/ingest.py --database-url postgresql://… --storage-url s3://…
"""

from __future__ import annotations

import argparse
import os
import time

import httpx

from msgtrail.testing.backends import add_bench_arguments
from msgtrail.testing.service import bench_service
from msgtrail.testing.workload import ndjson_batches, send_ndjson


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--batch", type=int, default=10_000)
    parser.add_argument("--connections", type=int, default=2)
    add_bench_arguments(parser)
    args = parser.parse_args()

    with bench_service(args) as (server, creds):
        headers = {"Authorization": f"Key {creds['api_key']}"}
        client = httpx.Client(base_url=server.base_url, headers=headers, timeout=120)
        message_id = client.post("/notifications", json={
            "app_id": creds["app_id"], "contents": {"en": "bench"},
            "target_channel": "push"}).json()["id"]
        payloads = ndjson_batches(args.events // 2, args.batch, int(time.time()))
        start = time.perf_counter()
        accepted = send_ndjson(client, message_id, creds["app_id"], payloads, args.connections)
        ingest_s = time.perf_counter() - start
        assert accepted == args.events, accepted

        start = time.perf_counter()
        doc = client.get(f"/notifications/{message_id}",
                         params={"app_id": creds["app_id"]}).json()
        read_s = time.perf_counter() - start
        recipients = args.events // 2
        assert doc["successful"] == recipients and doc["received"] == recipients, doc
        size = sum(f.stat().st_size for f in server.data_dir.glob("msgtrail.db*"))
        print(f"ingest: {accepted:,} events in {ingest_s:.2f} s = "
              f"{accepted / ingest_s:,.0f} events/s "
              f"({args.batch:,} per request, {args.connections} connections)")
        print(f"read back: all {recipients:,} recipients and {accepted:,} events visible "
              f"after {read_s:.2f} s (the counters, computed from the segments)")
        if size:
            print(f"database on disk: {size / 1e6:,.0f} MB")
        database = server.env.get("MSGTRAIL_DATABASE_URL", "sqlite").split("://")[0]
        print(f"database: {database}; cpu count {os.cpu_count()}")


if __name__ == "__main__":
    main()
