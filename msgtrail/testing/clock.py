"""A clock a test moves by hand: the time every msgtrail module reads (`msgtrail.clock`)
stands still until the test advances it, so leases, expiries, quiet periods and
retries are tested without sleeping."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

from msgtrail import clock


class ManualClock:
    def __init__(self, start: float | None = None) -> None:
        self.at = time.time() if start is None else start

    def __call__(self) -> float:
        return self.at

    def advance(self, seconds: float) -> None:
        self.at += seconds


@contextmanager
def manual_clock(start: float | None = None) -> Iterator[ManualClock]:
    """msgtrail's clock replaced by a manual one, in this process, until the block ends."""
    manual, before = ManualClock(start), clock.source
    clock.source = manual
    try:
        yield manual
    finally:
        clock.source = before
