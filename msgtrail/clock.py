"""Time, in one place, so that every module agrees on what 'now' is."""

import time


def exact() -> float:
    """Unix seconds, with their fraction (leases, expiries, rates)."""
    return time.time()


def now() -> int:
    """Unix seconds."""
    return int(exact())
