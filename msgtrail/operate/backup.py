"""Backup and restore of the embedded store: the SQLite database, the export files it
still serves, and the key that seals webhook credentials.

The database is copied with SQLite's online backup API in one step: one read
transaction, so the copy is the database as of one moment, while writers go on (WAL
lets a reader and a writer run together). Files are copied afterwards, those of the
jobs that copy calls ready: a file is never changed once published, and one deleted
meanwhile (its lifetime ended) is marked expired in the copy, as retention would.

A backup is a directory; `backup.json`, written last, says it is complete and holds
the database's checksum, which `restore` verifies before it writes anything.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sqlite3
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from msgtrail import __version__
from msgtrail.clock import exact
from msgtrail.errors import MsgtrailError
from msgtrail.files.local import LocalStore
from msgtrail.settings import Settings

DATABASE = "msgtrail.db"
FILES = "files"
SECRET_KEY = "secret.key"
MANIFEST = "backup.json"
_CHUNK = 1 << 20


@dataclass
class Summary:
    """What a backup holds, as `backup.json` records it."""

    created_at: float
    msgtrail_version: str
    migration: str
    database_bytes: int
    database_sha256: str
    apps: int
    messages: int
    events: int
    files: int
    file_bytes: int
    files_expired_meanwhile: int
    secret_key: bool
    seconds: float = 0.0


def _embedded_paths(settings: Settings) -> tuple[Path, Path]:
    """The database file and files directory of an embedded data dir, or a clear
    refusal for a deployment on PostgreSQL or S3 (their own tools back them up)."""
    url = settings.resolved_database_url()
    if not url.startswith("sqlite:///"):
        raise MsgtrailError("backup and restore cover the embedded store (SQLite); back up "
                            "PostgreSQL with pg_dump or its point-in-time recovery "
                            "(docs/operations.md, \"Backup and restore\")")
    storage = settings.resolved_storage_url()
    if "://" in storage and not storage.startswith("file://"):
        raise MsgtrailError("backup and restore cover a local files directory; S3 files are "
                            "kept by the bucket's own versioning or replication")
    return Path(url[len("sqlite:///"):]), Path(storage.removeprefix("file://"))


def _empty_dir(path: Path, what: str) -> None:
    if path.exists() and (not path.is_dir() or any(path.iterdir())):
        raise MsgtrailError(f"{what} {path} is not an empty directory")
    path.mkdir(parents=True, exist_ok=True)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def backup(settings: Settings, dest: Path) -> Summary:
    """Copy the embedded data dir of `settings` into the empty directory `dest`, while
    the service runs."""
    started = exact()
    database, files = _embedded_paths(settings)
    if not database.is_file():
        raise MsgtrailError(f"no database at {database}")
    _empty_dir(dest, "backup destination")
    copy = dest / DATABASE
    source = sqlite3.connect(database, timeout=60)
    target = sqlite3.connect(copy)
    try:
        source.backup(target)  # pages=-1: the whole database in one read transaction
    finally:
        source.close()
    try:
        target.execute("PRAGMA journal_mode=DELETE")  # one self-contained file
        counts = _counts(target)
        file_count, file_bytes, expired = _copy_files(target, LocalStore(files),
                                                      LocalStore(dest / FILES))
        target.commit()
    finally:
        target.close()
    key = settings.data_dir / SECRET_KEY
    if key.is_file() and not settings.secret_key:
        shutil.copy2(key, dest / SECRET_KEY)
        os.chmod(dest / SECRET_KEY, 0o600)
    summary = Summary(
        created_at=started, msgtrail_version=__version__, migration=counts.pop("migration"),
        database_bytes=copy.stat().st_size, database_sha256=_sha256(copy), **counts,
        files=file_count, file_bytes=file_bytes, files_expired_meanwhile=expired,
        secret_key=(dest / SECRET_KEY).is_file())
    summary.seconds = round(exact() - started, 3)
    (dest / MANIFEST).write_text(json.dumps(asdict(summary), indent=2) + "\n")
    return summary


def _counts(db: sqlite3.Connection) -> dict[str, Any]:
    one = lambda q: db.execute(q).fetchone()[0]  # noqa: E731
    return {"migration": one("SELECT group_concat(version_num) FROM alembic_version"),
            "apps": one("SELECT count(*) FROM apps"),
            "messages": one("SELECT count(*) FROM messages"),
            "events": one("SELECT coalesce(sum(events), 0) FROM activity_segments")}


def _copy_files(db: sqlite3.Connection, source: LocalStore, target: LocalStore
                ) -> tuple[int, int, int]:
    """Copy the files of the jobs the copied database calls ready; a job whose file
    is gone meanwhile is marked expired in the copy. Returns files, bytes, expired."""
    copied = size = expired = 0
    for job_id, key in db.execute("SELECT id, file_key FROM jobs WHERE state = 'ready'").fetchall():
        reader = source.reader(key)
        if reader is None:
            db.execute("UPDATE jobs SET state = 'expired' WHERE id = ?", (job_id,))
            expired += 1
            continue
        with reader, target.writer(key) as out:
            shutil.copyfileobj(reader, out, _CHUNK)
            size += out.tell()
        copied += 1
    return copied, size, expired


def read_summary(src: Path) -> Summary:
    """The summary of a complete backup, or a clear refusal."""
    try:
        fields = json.loads((src / MANIFEST).read_text())
    except FileNotFoundError:
        raise MsgtrailError(f"{src} holds no {MANIFEST}: not a backup, or one that did not "
                            "finish") from None
    return Summary(**fields)


def restore(src: Path, settings: Settings) -> Summary:
    """Put the backup in `src` into the data dir of `settings`, which must be empty;
    the database's checksum is verified first."""
    summary = read_summary(src)
    database, files = _embedded_paths(settings)
    if _sha256(src / DATABASE) != summary.database_sha256:
        raise MsgtrailError(f"{src / DATABASE} does not match its checksum in {MANIFEST}: the "
                            "backup is damaged")
    _empty_dir(settings.data_dir, "data directory")
    if files.exists() and any(files.iterdir()):
        raise MsgtrailError(f"files directory {files} is not empty")
    database.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(src / DATABASE, database)
    if (src / FILES).is_dir():
        shutil.copytree(src / FILES, files, dirs_exist_ok=True)
    if summary.secret_key:
        shutil.copy2(src / SECRET_KEY, settings.data_dir / SECRET_KEY)
        os.chmod(settings.data_dir / SECRET_KEY, 0o600)
    return summary
