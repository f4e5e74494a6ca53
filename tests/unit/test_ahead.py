"""msgtrail.store.ahead: the stage runner every read is built from."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest

from msgtrail.store.ahead import Ahead


def test_items_arrive_in_order_and_an_error_reaches_the_consumer() -> None:
    def source() -> Iterator[int]:
        yield from range(5)
        raise ValueError("the store went away")

    seen = []
    with pytest.raises(ValueError, match="the store went away"):
        for item in Ahead(source(), depth=1):
            seen.append(item)
    assert seen == [0, 1, 2, 3, 4]


def test_close_stops_the_source_early_and_runs_its_cleanup_on_its_thread() -> None:
    produced: list[int] = []
    cleaned = threading.Event()
    cleanup_thread: list[str] = []

    def source() -> Iterator[int]:
        try:
            for i in range(1_000):
                produced.append(i)
                yield i
        finally:
            cleanup_thread.append(threading.current_thread().name)
            cleaned.set()

    ahead = Ahead(source(), depth=1, name="stage")
    assert next(ahead) == 0
    ahead.close()
    assert cleaned.is_set() and cleanup_thread == ["stage"]
    assert len(produced) <= 2  # the one taken and at most one ahead, not the whole source


def test_depth_counts_the_item_being_made() -> None:
    """With depth 1 the source makes the next item while the consumer holds the current
    one, then waits for it to be taken: at most two items alive, whatever their size."""
    produced: list[int] = []

    def source() -> Iterator[int]:
        for i in range(10):
            produced.append(i)
            yield i

    ahead = Ahead(source(), depth=1)
    try:
        for expected in range(3):
            assert next(ahead) == expected
            time.sleep(0.2)  # time enough to run ahead, were it allowed to
            assert len(produced) == expected + 2
    finally:
        ahead.close()
