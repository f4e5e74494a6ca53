"""How a long-running msgtrail process allocates memory.

These settings keep the memory a process holds after a burst close to what it uses,
at the same speed (figures: docs/benchmarks.md, "Figures behind the code"):
- Arrow allocates from the system's allocator: its default (mimalloc) kept the memory
  of every request's parsed columns and every read's buffers for reuse. The
  `msgtrail` command sets it before pyarrow is imported (`msgtrail/__main__.py`); here
  it is set again for a process that imported pyarrow first.
- glibc keeps two malloc arenas instead of one per thread (the API's thread pool and
  DuckDB's threads each grew their own).
- glibc maps allocations of 1 MiB and more on their own and unmaps them when freed
  (by default the threshold rises with every large block freed, and the heap keeps
  them).
"""

from __future__ import annotations

import ctypes
import ctypes.util

import pyarrow as pa

# glibc's mallopt parameters
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_M_ARENA_MAX = -8


def bound() -> None:
    """Apply them, before the process starts its threads."""
    pa.set_memory_pool(pa.system_memory_pool())
    libc_name = ctypes.util.find_library("c")
    if libc_name:
        libc = ctypes.CDLL(libc_name)
        if hasattr(libc, "mallopt"):  # glibc only
            libc.mallopt(_M_ARENA_MAX, 2)
            libc.mallopt(_M_MMAP_THRESHOLD, 1 << 20)
            libc.mallopt(_M_TRIM_THRESHOLD, 4 << 20)
