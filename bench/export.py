"""Export benchmark: request -> file ready for one message, records/s and peak RSS.

Loads a push message with N recipients of realistic activity (the demo's generator:
most delivered, some clicked, a few failed) straight into a fresh store, and builds
its counters and recipient pages, as the background worker does once events pause,
long before anyone asks for an export of yesterday's message.
Then starts `msgtrail serve` (API + in-process worker), asks for the export over HTTP,
and times request accepted -> file ready by the job's own timestamps. Checks the file,
and times ISA-L level 1 compressing the same CSV bytes on one core: the reference limit.
With --activity, each round also runs the app-level activity export (one row per event)
of the same data, in that format, and reports its time beside the per-recipient one.

    python bench/export.py [--recipients 2000000]
    python bench/export.py --recipients 1000000 --activity csv   # ~2,050,000 events
    python bench/export.py --scale        # a throwaway PostgreSQL database + SeaweedFS
    python bench/export.py --database-url postgresql://… --storage-url s3://…
"""

from __future__ import annotations

import argparse
import gzip
import json
import random
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

import httpx
from isal import igzip

from msgtrail import apps, messages
from msgtrail.clock import now
from msgtrail.db.engine import make_engine, upgrade
from msgtrail.demo import _activity
from msgtrail.store import activity, event_batch, pages, upkeep
from msgtrail.testing.backends import add_bench_arguments, bench_env, bench_teardown
from msgtrail.testing.service import peak_rss_mb, start_server, stop_server

CHUNK = 100_000


def load(database_url: str, recipients: int) -> tuple[dict[str, str], str, float]:
    """An app and a push message with `recipients` recipients, counted and paged;
    returns the app's credentials, the message id and the seconds that took."""
    engine = make_engine(database_url)
    upgrade(engine)
    with engine.begin() as conn:
        app, key = apps.create_app(conn, "bench", "bench")
        message = messages.create(conn, app, {"app_id": app.app_id, "name": "bench",
                                              "contents": {"en": "bench"},
                                              "target_channel": "push"})
    rng = random.Random(7)
    start = now() - 6 * 3600
    for done in range(0, recipients, CHUNK):
        rows = _activity("push", min(CHUNK, recipients - done), start, rng)
        for i in range(0, len(rows), 10_000):
            with engine.begin() as conn:
                activity.append(conn, message.pk, event_batch.columns(
                    [(seq, *row) for seq, row in enumerate(rows[i:i + 10_000])]), now())
        print(f"\rloaded {done + CHUNK:,} recipients", end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)
    t = time.perf_counter()
    pages.build_pages(engine, message.pk)
    upkeep.refresh_stats(engine, message.pk)
    fold_s = time.perf_counter() - t
    engine.dispose()
    return {"app_id": app.app_id, "api_key": key}, message.message_id, fold_s


def export_once(client: httpx.Client, creds: dict[str, str],
                message_id: str) -> tuple[float, float, float, str]:
    """One export over HTTP: (accepted -> ready by the job's timestamps, time to the
    200, time until the client saw it ready, the file URL)."""
    params = {"app_id": creds["app_id"]}
    start = time.perf_counter()
    r = client.post(f"/notifications/{message_id}/export_events", params=params)
    r.raise_for_status()
    answered = time.perf_counter() - start
    export_id, url = r.json()["export_id"], r.json()["csv_file_url"]
    status_url = f"/notifications/{message_id}/export_events/{export_id}"
    # Polled gently: status requests are served by the process the worker runs in, and
    # polling every 10 ms took GIL time from it (4.9 s instead of ~3.3 s on
    # PostgreSQL). The job's own timestamps give the time to the millisecond.
    while (state := client.get(status_url, params=params).json())["state"] != "ready":
        assert state["state"] in ("queued", "running"), state
        time.sleep(0.1)
    seen = time.perf_counter() - start
    elapsed = (datetime.fromisoformat(state["finished_at"])
               - datetime.fromisoformat(state["created_at"])).total_seconds()
    return elapsed, answered, seen, url


def activity_once(client: httpx.Client, creds: dict[str, str], fmt: str) -> tuple[float, int]:
    """One app-level activity export over HTTP: (accepted -> ready, rows)."""
    base = f"/apps/{creds['app_id']}/activity_exports"
    r = client.post(base, json={"format": fmt})
    r.raise_for_status()
    while (state := client.get(f"{base}/{r.json()['export_id']}").json())["state"] != "ready":
        assert state["state"] in ("queued", "running"), state
        time.sleep(0.1)
    elapsed = (datetime.fromisoformat(state["finished_at"])
               - datetime.fromisoformat(state["created_at"])).total_seconds()
    return elapsed, int(state["manifest"]["rows"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipients", type=int, default=2_000_000)
    parser.add_argument("--rounds", type=int, default=3,
                        help="exports of the same message, one after another")
    parser.add_argument("--activity", choices=["csv", "jsonl", "parquet"], default=None,
                        help="also time the app-level activity export in this format")
    add_bench_arguments(parser)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp)
        env, scale = bench_env(args, data_dir)
        database_url = env.get("MSGTRAIL_DATABASE_URL", f"sqlite:///{data_dir / 'msgtrail.db'}")
        t = time.perf_counter()
        creds, message_id, fold_s = load(database_url, args.recipients)
        print(f"setup: {time.perf_counter() - t:.1f} s, of which counters and pages {fold_s:.1f} s "
              f"({args.recipients / fold_s:,.0f} recipients/s)")
        print(f"database: {database_url.split('://')[0]}, storage: "
              f"{env.get('MSGTRAIL_STORAGE_URL', 'local directory').split('?')[0]}")
        server = start_server(data_dir, "--processes", str(args.processes), env=env)
        try:
            client = httpx.Client(base_url=server.base_url, timeout=120,
                                  headers={"Authorization": f"Key {creds['api_key']}"})
            idle_rss = peak_rss_mb(server.process.pid)
            times, feed_times, events = [], [], 0
            for round_ in range(1, args.rounds + 1):
                elapsed, answered, seen, url = export_once(client, creds, message_id)
                times.append(elapsed)
                print(f"round {round_}: {args.recipients:,} records in {elapsed:.2f} s = "
                      f"{args.recipients / elapsed:,.0f} records/s, request accepted -> file "
                      f"ready (request answered in {answered * 1000:.0f} ms; the client, "
                      f"polling every 0.1 s, saw it ready after {seen:.2f} s)")
                if args.activity:
                    feed_s, events = activity_once(client, creds, args.activity)
                    feed_times.append(feed_s)
                    print(f"round {round_}: activity export ({args.activity}), {events:,} "
                          f"events in {feed_s:.2f} s = {events / feed_s:,.0f} events/s, "
                          f"{feed_s / elapsed:.2f}x the per-recipient export")
            rss = peak_rss_mb(server.process.pid)

            data = httpx.get(url, timeout=120, follow_redirects=True).content
            csv_bytes = gzip.decompress(data)
            lines = csv_bytes.count(b"\n")
            assert lines == args.recipients + 1, lines
            t = time.perf_counter()
            igzip.compress(csv_bytes, compresslevel=1)
            isal_s = time.perf_counter() - t

            best, worst = min(times), max(times)
            print(f"export: {args.recipients:,} records in {best:.2f}-{worst:.2f} s = "
                  f"{args.recipients / worst:,.0f}-{args.recipients / best:,.0f} records/s "
                  f"over {len(times)} rounds")
            print(f"file: {len(data) / 1e6:.1f} MB gzip, {len(csv_bytes) / 1e6:.1f} MB CSV")
            print(f"serve process (API + worker) peak RSS: {rss:.0f} MB "
                  f"({idle_rss:.0f} MB before the export)")
            print(f"reference: ISA-L level 1 on one core compresses the same CSV in "
                  f"{isal_s:.2f} s = {args.recipients / isal_s:,.0f} records/s")
            result = {"records": args.recipients, "seconds": [round(t, 3) for t in times],
                      "records_per_s": round(args.recipients / best),
                      "peak_rss_mb": round(rss), "isal_seconds": round(isal_s, 3)}
            if feed_times:
                ratios = [f / t for f, t in zip(feed_times, times, strict=True)]
                print(f"activity export: {events:,} events in {min(feed_times):.2f}-"
                      f"{max(feed_times):.2f} s, {min(ratios):.2f}-{max(ratios):.2f}x the "
                      "per-recipient export of the same round")
                result |= {"activity_events": events,
                           "activity_seconds": [round(t, 3) for t in feed_times]}
            print(json.dumps(result))
        finally:
            stop_server(server)
            bench_teardown(env, scale)


if __name__ == "__main__":
    main()
