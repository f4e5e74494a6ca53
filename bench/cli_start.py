"""How long the `msgtrail` command takes to start: `msgtrail --help`, and `msgtrail
apps list` on a data dir with one app (what a person types first), each run as a new
process, min / median / max over the runs, beside the machine's single-core speed.

    .venv/bin/python bench/cli_start.py --runs 10
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from msgtrail.testing.service import core_loop_seconds

COMMAND = [str(Path(sys.executable).parent / "msgtrail")]


def _timed(args: list[str], runs: int) -> dict[str, float]:
    took = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run([*COMMAND, *args], check=True, capture_output=True)
        took.append(time.perf_counter() - started)
    return {"min": round(min(took), 3), "median": round(statistics.median(took), 3),
            "max": round(max(took), 3)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as data_dir:
        subprocess.run([*COMMAND, "apps", "create", "--name", "bench", "--data-dir", data_dir],
                       check=True, capture_output=True)
        print(json.dumps({
            "core_loop_s": core_loop_seconds(), "runs": args.runs,
            "help_s": _timed(["--help"], args.runs),
            "apps_list_s": _timed(["apps", "list", "--data-dir", data_dir], args.runs)}))


if __name__ == "__main__":
    main()
