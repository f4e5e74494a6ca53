"""msgtrail.runtime.allocators and the command's own setting: which allocator Arrow uses."""

from __future__ import annotations

import os
import subprocess
import sys


def _backend(code: str, stream: str = "stdout") -> str:
    env = {k: v for k, v in os.environ.items() if k != "ARROW_DEFAULT_MEMORY_POOL"}
    done = subprocess.run([sys.executable, "-c", code], env=env, check=True,
                          capture_output=True, text=True)
    return str(getattr(done, stream)).strip().splitlines()[-1]


def test_the_msgtrail_command_never_sets_up_arrows_default_allocator() -> None:
    """The command makes the system's allocator Arrow's default from the start
    (mimalloc, once set up, keeps memory resident)."""
    assert _backend("import sys; sys.argv = ['msgtrail', '--help']\n"
                    "from msgtrail.__main__ import run\n"
                    "try:\n    run()\nexcept SystemExit:\n    pass\n"
                    "import pyarrow as pa, sys; print(pa.default_memory_pool().backend_name,"
                    " file=sys.stderr)", stream="stderr") == "system"


def test_importing_msgtrail_changes_no_environment() -> None:
    assert _backend("import os, msgtrail.web.app, msgtrail.cli;"
                    " print(os.environ.get('ARROW_DEFAULT_MEMORY_POOL'))") == "None"


def test_bound_moves_a_process_that_imported_pyarrow_first() -> None:
    assert _backend("import pyarrow as pa; from msgtrail.runtime import allocators;"
                    " allocators.bound(); print(pa.default_memory_pool().backend_name)"
                    ) == "system"
