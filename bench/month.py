"""Busy-month benchmark: a store holding 30 days of a busy app, built with the clock,
then used as its users use it.

Build (in this process, through the service's own calls, msgtrail's clock moved to
each message's time instead of waiting): `--per-day` messages a day for `--days` days,
the last ending an hour ago. Each day holds one message of `--big` recipients, one of
exactly 10,000 (the exports measured below) and the rest of 1,000-30,000 (log-uniform),
each a realistic send (`workload.mixed_batches`: 5% failed, 10% clicked late, 1%
unsubscribed, ~2.16 events per recipient), in batches of 10,000 events. Then the
upkeep a worker would run (compaction, pages, counters) for every message.

Measure, against `msgtrail serve` on that store:
- the message list (`GET /notifications`, pages of 50 anywhere in the month) and a
  message (`GET /notifications/{id}`), then the dashboard's list and report pages of
  10,000-recipient messages: p50 / p95 / max;
- exports of 10,000-recipient messages, one after another, while a sender beside them
  sends `--ingest-rate` events/s into a new message: p50 / p90 of the job's own time
  (queued -> file ready) and of what the client saw;
- after serve stops: retention purging the oldest day (in this process, the clock a
  day on), its time, and the space given back (free pages the database reuses; a
  SQLite file shrinks only by VACUUM). A purged message must still show its totals.

    python bench/month.py [--days 30] [--per-day 100] [--big 1000000] --data-dir D

With --data-dir, a store built before in D is measured again without rebuilding.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import re
import statistics
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import Engine, text

from msgtrail import apps
from msgtrail.db.engine import make_engine, upgrade
from msgtrail.files import open_store
from msgtrail.runtime import retention
from msgtrail.service import Service
from msgtrail.settings import Settings
from msgtrail.store import upkeep
from msgtrail.testing.clock import manual_clock
from msgtrail.testing.service import start_server, stop_server, wait_idle
from msgtrail.testing.workload import mixed_batches

DAY = 86_400
BATCH = 10_000
EXPORT_RECIPIENTS = 10_000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--per-day", type=int, default=100)
    parser.add_argument("--big", type=int, default=1_000_000)
    parser.add_argument("--ingest-rate", type=int, default=100_000)
    parser.add_argument("--export-seconds", type=float, default=90,
                        help="how long exports are asked for beside the sender: past "
                        "upkeep_max_lag_seconds (60), so the live message's upkeep runs")
    parser.add_argument("--data-dir", type=Path, required=True)
    args = parser.parse_args()
    args.data_dir.mkdir(parents=True, exist_ok=True)
    built = args.data_dir / "month.json"
    if not built.exists():
        built.write_text(json.dumps(build(args)))
    month = json.loads(built.read_text())
    report: dict[str, Any] = {"build": month["build"]}
    # Exports are asked for back to back: past the default 60 a minute per app.
    server = start_server(args.data_dir, env={"MSGTRAIL_EXPORT_RATE_LIMIT": "1000000/minute"})
    try:
        # (A store measured before holds the message its sender filled: its upkeep
        # runs first.)
        wait_idle(server.process.pid, limit=1800)
        report.update(reads(server.base_url, month))
        report.update(exports_under_ingest(server.base_url, month, args.ingest_rate,
                                           args.export_seconds))
    finally:
        stop_server(server)
    report.update(purge_a_day(args.data_dir, month))
    print(json.dumps(report))


def build(args: argparse.Namespace) -> dict[str, Any]:
    """The month's store in args.data_dir: its app, messages and how long it took."""
    settings = Settings(data_dir=args.data_dir)
    engine = make_engine(settings.resolved_database_url(), 1)
    upgrade(engine)
    rng = random.Random(7)
    # The month's messages, evenly spaced from an hour inside the retention window to
    # three hours ago; each one's events arrive over the two hours after it.
    start = int(time.time()) - args.days * DAY + 3600
    spacing = (args.days * DAY - 4 * 3600) / (args.days * args.per_day)
    started = time.perf_counter()
    events = 0
    sizes: dict[str, int] = {}
    with manual_clock(start) as clock:
        svc = Service(settings, engine)
        with engine.begin() as conn:
            app, key = apps.create_app(conn, "busy month")
        for day in range(args.days):
            for m in range(args.per_day):
                created = start + (day * args.per_day + m) * spacing
                clock.at = created
                recipients = (args.big if m == 0 else EXPORT_RECIPIENTS if m == 1
                              else round(math.exp(rng.uniform(math.log(1_000),
                                                              math.log(30_000)))))
                message = svc.create_message(app, {"name": f"day {day} #{m}",
                                                   "target_channel": "push"})
                clock.at = created + 7200
                for body in mixed_batches(recipients, BATCH, int(clock.at),
                                          seed=day * 1000 + m):
                    events += svc.ingest(app, message.message_id, body, True)["accepted"]
                sizes[message.message_id] = recipients
            print(f"day {day + 1}: {events:,} events, "
                  f"{time.perf_counter() - started:.0f} s", flush=True)
        ingested = time.perf_counter() - started
        clock.at = time.time()
        while upkeep.compact_next(engine, clock(), 0, 0):
            pass
        svc.close()
    engine.dispose()
    took = time.perf_counter() - started
    return {"app_id": app.app_id, "key": key, "start": start, "sizes": sizes,
            "database_url": settings.resolved_database_url(),
            "build": {"days": args.days, "messages": len(sizes), "events": events,
                      "recipients": sum(sizes.values()), "ingest_s": round(ingested),
                      "upkeep_s": round(took - ingested),
                      "database_gb": round(_database_bytes(args.data_dir) / 1e9, 2)}}


def reads(base_url: str, month: dict[str, Any]) -> dict[str, Any]:
    """Latencies of the message list and a message, in the API and the dashboard."""
    rng = random.Random(1)
    app_id, key = month["app_id"], month["key"]
    ids = list(month["sizes"])
    tens = _unpurged_tens(month)
    api = httpx.Client(base_url=base_url, headers={"Authorization": f"Key {key}"},
                       timeout=60)
    out = {
        "api_list_ms": _timed(lambda: api.get("/notifications", params={
            "app_id": app_id, "limit": 50, "offset": rng.randrange(len(ids))}), 200),
        "api_message_ms": _timed(lambda: api.get(f"/notifications/{rng.choice(ids)}",
                                                 params={"app_id": app_id}), 200)}
    web = httpx.Client(base_url=base_url, timeout=60)
    csrf = re.search(r'name="csrf" value="([^"]+)"', web.get("/").text)
    assert csrf, "no sign-in form"
    web.post("/signin", data={"csrf": csrf.group(1), "app_id": app_id, "api_key": key})
    pages = -(-len(ids) // 50)
    out["dashboard_list_ms"] = _timed(
        lambda: web.get("/messages", params={"page": rng.randrange(1, pages + 1)}), 100)
    out["dashboard_report_10k_ms"] = _timed(
        lambda: web.get(f"/messages/{rng.choice(tens)}"), 60)
    return out


def exports_under_ingest(base_url: str, month: dict[str, Any], rate: int,
                         seconds: float) -> dict[str, Any]:
    """Exports of 10,000-recipient messages, one after another for `seconds`, while a
    sender sends `rate` events/s (batches of 10,000) into a new message."""
    app_id, key = month["app_id"], month["key"]
    client = httpx.Client(base_url=base_url, headers={"Authorization": f"Key {key}"},
                          timeout=60)
    sending = client.post("/notifications", json={"app_id": app_id, "name": "live",
                                                  "target_channel": "push"}).json()["id"]
    stop = threading.Event()
    sent = [0]

    def sender(bodies: list[bytes]) -> None:
        began = time.perf_counter()
        with httpx.Client(base_url=base_url, headers={"Authorization": f"Key {key}"},
                          timeout=60) as own:
            for body in bodies:
                if stop.is_set():
                    return
                r = own.post(f"/notifications/{sending}/events", params={"app_id": app_id},
                             content=body, headers={"Content-Type": "application/x-ndjson"})
                r.raise_for_status()
                sent[0] += r.json()["accepted"]
                ahead = began + sent[0] / rate - time.perf_counter()
                if ahead > 0:
                    time.sleep(ahead)

    # Enough events for the whole run (a mixed send has ~2.11 events per recipient).
    bodies = mixed_batches(int(rate * (seconds + 15) / 2.1), BATCH, int(time.time()))
    thread = threading.Thread(target=sender, args=(bodies,))
    began = time.perf_counter()
    thread.start()
    time.sleep(5)
    tens = _unpurged_tens(month)
    rng = random.Random(2)
    seen, jobs_s = [], []
    until = time.perf_counter() + seconds
    while time.perf_counter() < until:
        message_id = rng.choice(tens)
        asked = time.perf_counter()
        r = client.post(f"/notifications/{message_id}/export_events",
                        params={"app_id": app_id})
        r.raise_for_status()
        status = f"/notifications/{message_id}/export_events/{r.json()['export_id']}"
        while (state := client.get(status, params={"app_id": app_id}).json())["state"] != "ready":
            assert state["state"] in ("queued", "running"), state
            time.sleep(0.01)
        seen.append(time.perf_counter() - asked)
        jobs_s.append(_job_seconds(month, r.json()["export_id"]))
    stop.set()
    thread.join()
    rate_seen = sent[0] / (time.perf_counter() - began)
    return {"export_10k_job_ms": _summary(jobs_s), "export_10k_seen_ms": _summary(seen),
            "ingest_beside_events_per_s": round(rate_seen)}


def _unpurged_tens(month: dict[str, Any]) -> list[str]:
    """The 10,000-recipient messages whose activity is still kept (a run before this
    one purged the oldest day)."""
    with _engine(month).connect() as conn:
        purged = set(conn.execute(text(
            "SELECT message_id FROM messages WHERE purged_at IS NOT NULL")).scalars())
    return [m for m, n in month["sizes"].items() if n == EXPORT_RECIPIENTS and m not in purged]


def _job_seconds(month: dict[str, Any], export_id: str) -> float:
    engine = _engine(month)
    with engine.connect() as conn:
        created, finished = conn.execute(text(
            "SELECT created_at, finished_at FROM jobs WHERE export_id = :e"),
            {"e": export_id}).one()
    return float(finished) - float(created)


_engines: dict[str, Engine] = {}


def _engine(month: dict[str, Any]) -> Engine:
    url = month["database_url"]
    if url not in _engines:
        _engines[url] = make_engine(url)
    return _engines[url]


def purge_a_day(data_dir: Path, month: dict[str, Any]) -> dict[str, Any]:
    """Retention purging the month's oldest day, the clock a day past its window."""
    settings = Settings(data_dir=data_dir)
    engine = make_engine(settings.resolved_database_url(), 1)
    before = _free_pages(engine)
    with manual_clock(month["start"] + (settings.activity_retention_days + 1) * DAY):
        started = time.perf_counter()
        counts = retention.purge(engine, open_store(settings.resolved_storage_url()),
                                 settings)
        took = time.perf_counter() - started
    freed = (_free_pages(engine) - before) * _page_size(engine)
    with engine.connect() as conn:
        stats = conn.execute(text(
            "SELECT stats FROM messages WHERE purged_at IS NOT NULL LIMIT 1")).scalar_one()
    assert json.loads(stats)["totals"]["recipients"] > 0, "a purged message lost its counters"
    engine.dispose()
    return {"purge_day": {"messages": counts["messages"], "seconds": round(took, 2),
                          "space_given_back_gb": round(freed / 1e9, 2),
                          "database_gb": round(_database_bytes(data_dir) / 1e9, 2)}}


def _free_pages(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(text("PRAGMA freelist_count")).scalar_one())


def _page_size(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(text("PRAGMA page_size")).scalar_one())


def _database_bytes(data_dir: Path) -> int:
    return sum(p.stat().st_size for p in data_dir.glob("msgtrail.db*"))


def _timed(call: Callable[[], httpx.Response], n: int) -> dict[str, float]:
    took = []
    for _ in range(n):
        started = time.perf_counter()
        r = call()
        took.append(time.perf_counter() - started)
        assert r.status_code == 200, (r.status_code, r.text[:200])
    return _summary(took)


def _summary(seconds: list[float]) -> dict[str, float]:
    ms = sorted(s * 1000 for s in seconds)
    q = statistics.quantiles(ms, n=20, method="inclusive")
    return {"p50": round(statistics.median(ms), 1), "p90": round(q[17], 1),
            "p95": round(q[18], 1), "max": round(ms[-1], 1), "n": len(ms)}


if __name__ == "__main__":
    main()
