"""Readiness: a database behind this code's migrations, and a worker whose job's lease
is no longer renewed, make the process not ready."""

from __future__ import annotations

import time
from pathlib import Path

from msgtrail.db.engine import HEAD, make_engine, migrations_behind, upgrade
from msgtrail.export.pipeline import Progress
from msgtrail.files import MemoryStore
from msgtrail.runtime.worker import Worker
from msgtrail.service import Service
from msgtrail.settings import Settings
from tests.unit.conftest import Store


def test_a_database_behind_the_migrations_is_not_ready(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    engine = make_engine(settings.resolved_database_url(), 1)
    upgrade(engine, "0011")
    service = Service(settings, engine)
    try:
        assert service.not_ready() == [
            f"migrations: database at migration 0011, this code at {HEAD}"]
        upgrade(engine)
        assert migrations_behind(engine) is None and service.not_ready() == []
    finally:
        service.close()
        engine.dispose()


def test_a_worker_whose_lease_is_not_renewed_is_stalled(store: Store) -> None:
    worker = Worker(store.settings, store.engine, MemoryStore())
    assert worker.stalled() is None  # idle
    worker._progress = Progress()  # a job running, its lease renewed just now
    worker._renewed = time.monotonic()
    assert worker.stalled() is None
    worker._renewed -= store.settings.lease_seconds / 2 + 1
    assert "lease not renewed" in (worker.stalled() or "")
    worker._progress.done.set()  # the job ended
    assert worker.stalled() is None
