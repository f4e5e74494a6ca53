"""`msgtrail backup` of a big embedded store, while a sender keeps ingesting: how long
the copy takes, what it holds, and what the sender got meanwhile; then the restore and
its check.

    python bench/backup.py [--recipients 1000000]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import httpx

from msgtrail.testing.service import (
    MSGTRAIL,
    core_loop_seconds,
    start_server,
    stop_server,
    wait_idle,
)
from msgtrail.testing.workload import ndjson_batches, send_ndjson


def _timed(*args: str) -> tuple[float, str]:
    started = time.perf_counter()
    done = subprocess.run([*MSGTRAIL, *args], capture_output=True, text=True, check=True)
    return time.perf_counter() - started, done.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipients", type=int, default=1_000_000)
    args = parser.parse_args()
    core_loop = core_loop_seconds()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        srv = start_server(root / "live")
        try:
            creds = srv.create_app()
            with srv.client(creds) as client:
                message_id = client.post("/notifications", json={
                    "app_id": creds.app_id, "target_channel": "push"}).json()["id"]
                send_ndjson(client, message_id, creds.app_id,
                            ndjson_batches(args.recipients, 10_000, int(time.time())), 2)
            wait_idle(srv.process.pid, quiet=4.0, limit=1800)
            acked = [0]
            stop = threading.Event()
            bodies = ndjson_batches(50_000, 5_000, int(time.time()))

            def ingest() -> None:
                with httpx.Client(base_url=srv.base_url, timeout=60, headers={
                        "Authorization": f"Key {creds.api_key}"}) as sender:
                    while not stop.is_set():
                        for body in bodies:
                            sender.post(f"/notifications/{message_id}/events",
                                        params={"app_id": creds.app_id}, content=body,
                                        headers={"content-type": "application/x-ndjson"}
                                        ).raise_for_status()
                            acked[0] += 5_000

            sender = threading.Thread(target=ingest)
            sender.start()
            time.sleep(1)
            before = acked[0]
            backup_s, _ = _timed("backup", str(root / "backup"), "--data-dir",
                                 str(srv.data_dir))
            during = acked[0] - before
            stop.set()
            sender.join()
        finally:
            stop_server(srv)
        summary = json.loads((root / "backup" / "backup.json").read_text())
        restore_s, out = _timed("restore", str(root / "backup"), "--data-dir",
                                str(root / "restored"))
        assert "no problems found" in out, out
        print(json.dumps({
            "core_loop_s": core_loop, "recipients": args.recipients,
            "database_mb": round(summary["database_bytes"] / 1e6, 1),
            "backup_s": round(backup_s, 2), "events_in_backup": summary["events"],
            "events_acknowledged_during_backup": during,
            "restore_and_check_s": round(restore_s, 2)}))


if __name__ == "__main__":
    main()
