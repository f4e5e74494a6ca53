"""How a long-running msgtrail process allocates memory.

Both settings keep the memory a process holds after a burst close to what it uses
(`bench/e2e.py`, 1,000,000 recipients: `serve`'s peak 425-433 MB with the defaults,
381-391 MB with these, at the same speed; 196-201 MB after ingestion instead of
230-233):
- Arrow allocates from the system's allocator: its default (mimalloc) kept the memory
  of every request's parsed columns and every read's buffers for reuse.
- glibc keeps two malloc arenas instead of one per thread (the API's thread pool and
  DuckDB's threads each grew their own).
"""

from __future__ import annotations

import ctypes
import ctypes.util

import pyarrow as pa

_M_ARENA_MAX = -8  # glibc's mallopt parameter


def bound() -> None:
    """Apply both, before the process starts its threads."""
    pa.set_memory_pool(pa.system_memory_pool())
    libc_name = ctypes.util.find_library("c")
    if libc_name:
        libc = ctypes.CDLL(libc_name)
        if hasattr(libc, "mallopt"):  # glibc only
            libc.mallopt(_M_ARENA_MAX, 2)
