"""Where this machine's processes keep their metrics. Apart from msgtrail.runtime.metrics
because prometheus_client picks its single- or multiprocess mode from the environment
when it is imported: the directory is set first."""

from __future__ import annotations

import os
from pathlib import Path

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


def prepare(directory: Path) -> None:
    """Use `directory` for this process's metrics and those it starts; files of
    processes no longer running are removed (their counters start again from zero, as
    Prometheus expects of a restart). Call before msgtrail.runtime.metrics is imported."""
    directory.mkdir(parents=True, exist_ok=True)
    for path in directory.glob("*.db"):
        pid = path.stem.rsplit("_", 1)[-1]
        if pid.isdigit() and not Path(f"/proc/{pid}").exists():
            path.unlink(missing_ok=True)
    os.environ[MULTIPROC_ENV] = str(directory)
