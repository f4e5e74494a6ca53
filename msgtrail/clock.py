"""Time, in one place, so that every module agrees on what 'now' is."""

import time


def now() -> int:
    """Unix seconds."""
    return int(time.time())
