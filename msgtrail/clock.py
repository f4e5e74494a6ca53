"""Time, in one place, so that every module agrees on what 'now' is, and a test can
move it (`msgtrail.testing.clock`) instead of sleeping."""

import time
from collections.abc import Callable

# Where the time comes from; only tests replace it.
source: Callable[[], float] = time.time


def exact() -> float:
    """Unix seconds, with their fraction (leases, expiries, rates)."""
    return source()


def now() -> int:
    """Unix seconds."""
    return int(source())
