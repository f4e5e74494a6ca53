"""msgtrail: per-recipient message activity and its exports."""

import os

# Before anything imports pyarrow, which picks its default allocator then: mimalloc, set
# up at all, kept ~20 MB resident in its own reserved region after the process moved to
# the system allocator (msgtrail/runtime/allocators.py), and a process that never sets it up
# holds that much less (an export, compaction and page build of 1,000,000 recipients in
# one process: 155-161 MB after them against 176-180, peak 248-250 against 255-258).
os.environ.setdefault("ARROW_DEFAULT_MEMORY_POOL", "system")

__version__ = "0.1.0"
