"""msgtrail.runtime.allocators and the package's own setting: which allocator Arrow uses."""

from __future__ import annotations

import os
import subprocess
import sys


def _backend(code: str) -> str:
    env = {k: v for k, v in os.environ.items() if k != "ARROW_DEFAULT_MEMORY_POOL"}
    return subprocess.run([sys.executable, "-c", code], env=env, check=True,
                          capture_output=True, text=True).stdout.strip()


def test_a_msgtrail_process_never_sets_up_arrows_default_allocator() -> None:
    """Importing msgtrail first makes the system's allocator Arrow's default from the
    start (mimalloc, once set up, keeps memory resident)."""
    assert _backend("import msgtrail.web.app, pyarrow as pa;"
                    " print(pa.default_memory_pool().backend_name)") == "system"


def test_bound_moves_a_process_that_imported_pyarrow_first() -> None:
    assert _backend("import pyarrow as pa; from msgtrail.runtime import allocators;"
                    " allocators.bound(); print(pa.default_memory_pool().backend_name)"
                    ) == "system"
