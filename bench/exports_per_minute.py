"""Exports per minute: how many 10,000-recipient exports the workers finish a minute,
with 1, 2 and 4 `msgtrail worker` processes beside one API process.

Starts `msgtrail serve --workers 0` (`--scale`: on a throwaway PostgreSQL database and
SeaweedFS), creates `--accounts` accounts of one app each (one export at a time per
account, so as many exports may be in flight), records a 10,000-recipient message in
each (`workload.mixed_batches`) and waits for its background work. Then, for each
worker count, every account asks for an export of its message again and again for
`--seconds`, waiting for each file (its status polled every 20 ms): the exports
finished per minute, the job's own time (queued -> ready), and the CPU the workers
and the API process used.

    python bench/exports_per_minute.py --scale [--workers 1 2 4] [--poll 0.5]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import text

from msgtrail.db.engine import make_engine
from msgtrail.testing.backends import add_bench_arguments, bench_env, bench_teardown
from msgtrail.testing.service import MSGTRAIL, run_cli, start_server, stop_server
from msgtrail.testing.workload import mixed_batches, send_ndjson

RECIPIENTS = 10_000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--accounts", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--poll", type=float, default=0.5,
                        help="an idle worker's poll interval (MSGTRAIL_POLL_INTERVAL)")
    add_bench_arguments(parser)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp)
        env, scale = bench_env(args, data_dir)
        env["MSGTRAIL_EXPORT_RATE_LIMIT"] = "1000000/minute"
        server = start_server(data_dir, "--workers", "0", env=env)
        env = server.env
        database_url = env.get("MSGTRAIL_DATABASE_URL") or f"sqlite:///{data_dir / 'msgtrail.db'}"
        try:
            targets = _setup(server.base_url, data_dir, env, args.accounts, database_url)
            results = [_measure(server.base_url, data_dir, env, targets, workers, args,
                                database_url, server.process.pid)
                       for workers in args.workers]
        finally:
            stop_server(server)
            bench_teardown(env, scale)
    print(json.dumps({"backend": "scale" if args.scale else "embedded",
                      "poll_s": args.poll, "accounts": args.accounts, "runs": results}))


def _setup(base_url: str, data_dir: Path, env: dict[str, str], accounts: int,
           database_url: str) -> list[tuple[dict[str, str], str]]:
    """(credentials, message id) per account, the message's background work done."""
    targets = []
    for i in range(accounts):
        creds = json.loads(run_cli(data_dir, "apps", "create", "--name", f"a{i}",
                                   "--account", f"account-{i}", "--json", env=env))
        client = _client(base_url, creds)
        message_id = client.post("/notifications", json={
            "app_id": creds["app_id"], "target_channel": "push"}).json()["id"]
        send_ndjson(client, message_id, creds["app_id"],
                    mixed_batches(RECIPIENTS, 10_000, int(time.time()), seed=i), 2)
        targets.append((creds, message_id))
    worker = _worker(data_dir, env, 0.1)
    try:
        engine = make_engine(database_url)
        while True:  # the messages' upkeep (compaction, pages, counters) is done
            with engine.connect() as conn:
                if not conn.execute(text("SELECT count(*) FROM messages"
                                         " WHERE pending_since IS NOT NULL")).scalar_one():
                    break
            time.sleep(0.5)
        engine.dispose()
    finally:
        worker.terminate()
        worker.wait()
    return targets


def _measure(base_url: str, data_dir: Path, env: dict[str, str],
             targets: list[tuple[dict[str, str], str]], workers: int,
             args: argparse.Namespace, database_url: str, api_pid: int) -> dict[str, Any]:
    processes = [_worker(data_dir, env, args.poll) for _ in range(workers)]
    done: list[str] = []
    stop = threading.Event()

    def ask(creds: dict[str, str], message_id: str) -> None:
        with _client(base_url, creds) as client:
            params = {"app_id": creds["app_id"]}
            while not stop.is_set():
                r = client.post(f"/notifications/{message_id}/export_events", params=params)
                r.raise_for_status()
                export_id = r.json()["export_id"]
                status = f"/notifications/{message_id}/export_events/{export_id}"
                while client.get(status, params=params).json()["state"] != "ready":
                    time.sleep(0.02)
                if not stop.is_set():
                    done.append(export_id)

    cpu_before = [_cpu_seconds(p.pid) for p in processes]
    api_before = _cpu_seconds(api_pid)
    threads = [threading.Thread(target=ask, args=target) for target in targets]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    time.sleep(args.seconds)
    stop.set()
    elapsed = time.perf_counter() - started
    cpu = sum(_cpu_seconds(p.pid) - b for p, b in zip(processes, cpu_before, strict=True))
    api_cpu = _cpu_seconds(api_pid) - api_before
    for thread in threads:
        thread.join()
    for process in processes:
        process.terminate()
        process.wait()
    took = _job_seconds(database_url, done)
    return {"workers": workers, "exports_per_minute": round(len(done) * 60 / elapsed),
            "job_s_p50": round(statistics.median(took), 3),
            "job_s_p90": round(statistics.quantiles(took, n=10)[8], 3),
            "workers_cpu_cores": round(cpu / elapsed, 2),
            "api_cpu_cores": round(api_cpu / elapsed, 2)}


def _job_seconds(database_url: str, export_ids: list[str]) -> list[float]:
    engine = make_engine(database_url)
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT export_id, finished_at - created_at FROM jobs"
                                 " WHERE state = 'ready'")).all()
    engine.dispose()
    wanted = set(export_ids)
    return [float(s) for e, s in rows if e in wanted]


def _client(base_url: str, creds: dict[str, str]) -> httpx.Client:
    return httpx.Client(base_url=base_url, timeout=120,
                        headers={"Authorization": f"Key {creds['api_key']}"})


def _worker(data_dir: Path, env: dict[str, str], poll: float) -> subprocess.Popen[bytes]:
    log = open(data_dir / f"worker-{time.monotonic_ns()}.log", "w")  # noqa: SIM115
    return subprocess.Popen([*MSGTRAIL, "worker", "--data-dir", str(data_dir)],
                            stdout=log, stderr=subprocess.STDOUT,
                            env={**os.environ, **env, "MSGTRAIL_POLL_INTERVAL": str(poll)})


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


if __name__ == "__main__":
    main()
