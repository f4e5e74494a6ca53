"""Where this machine's processes keep their metrics. Apart from msgtrail.runtime.metrics
because prometheus_client picks its single- or multiprocess mode from the environment
when it is imported: the directory is set first."""

from __future__ import annotations

import os
from pathlib import Path

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


def prepare(directory: Path) -> None:
    """Use `directory` for this process's metrics and those it starts. The first
    process of the machine to start (none of the others runs) empties it: counters
    start again from zero, as Prometheus expects of a restart. While any runs, the
    counts of processes that ended (a worker restarted, a `msgtrail import`) stay in
    the sums, so that a counter never goes down. Call before msgtrail.runtime.metrics
    is imported."""
    directory.mkdir(parents=True, exist_ok=True)
    files = list(directory.glob("*.db"))
    pids = {path.stem.rsplit("_", 1)[-1] for path in files}
    if not any(pid.isdigit() and Path(f"/proc/{pid}").exists() for pid in pids):
        for path in files:
            path.unlink(missing_ok=True)
    os.environ[MULTIPROC_ENV] = str(directory)
