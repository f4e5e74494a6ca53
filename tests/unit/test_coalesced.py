"""Coalesced: callers at the same time share runs, and each gets a run that started
after it called."""

from __future__ import annotations

import threading
import time

import pytest

from msgtrail.store.coalesced import Coalesced


def _callers(coalesced: Coalesced, work, n: int) -> list[tuple[float, float, BaseException | None]]:
    """n threads calling at once: (called, returned, what it raised) each."""
    start = threading.Barrier(n)
    seen: list[tuple[float, float, BaseException | None]] = []

    def call() -> None:
        start.wait()
        called = time.monotonic()
        try:
            coalesced.run("key", work)
            seen.append((called, time.monotonic(), None))
        except RuntimeError as exc:
            seen.append((called, time.monotonic(), exc))

    threads = [threading.Thread(target=call) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    return seen


def test_many_callers_share_at_most_two_runs_each_started_after_they_called() -> None:
    runs: list[tuple[float, float]] = []

    def work() -> None:
        begun = time.monotonic()
        time.sleep(0.2)
        runs.append((begun, time.monotonic()))

    seen = _callers(Coalesced(), work, 8)
    assert len(seen) == 8 and all(err is None for *_, err in seen)
    assert 1 <= len(runs) <= 2
    for called, returned, _ in seen:
        assert any(called <= begun and ended <= returned for begun, ended in runs)


def test_a_run_that_raises_serves_nobody_and_the_next_caller_runs_it_again() -> None:
    runs: list[str] = []
    lock = threading.Lock()

    def work() -> None:
        with lock:
            first = not runs
            runs.append("raised" if first else "ran")
        time.sleep(0.1)
        if first:
            raise RuntimeError("the database went away")

    seen = _callers(Coalesced(), work, 4)
    errors = [err for *_, err in seen if err is not None]
    assert len(errors) == 1 and runs[0] == "raised" and runs[1:] and set(runs[1:]) == {"ran"}
    assert len(runs) <= 3


def test_one_caller_runs_it_each_time() -> None:
    count = [0]
    coalesced = Coalesced()
    for _ in range(3):
        coalesced.run("key", lambda: count.__setitem__(0, count[0] + 1))
    assert count[0] == 3
    with pytest.raises(ValueError):
        coalesced.run("key", lambda: int("x"))
    assert not coalesced._runs  # nothing kept between calls
