"""Work that many callers of one process ask for at once, done for all of them.

A caller needs a run of the work that started after it asked: one already running may
have begun before the caller's own writes, so it waits for the next run, which serves
every caller that arrived meanwhile. However many callers arrive, at most one run per
key is in progress and one more follows it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable
from dataclasses import dataclass


@dataclass
class _Runs:
    started: int = 0
    finished: int = 0
    running: bool = False
    callers: int = 0


class Coalesced:
    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._runs: dict[Hashable, _Runs] = {}

    def run(self, key: Hashable, work: Callable[[], None]) -> None:
        """Return once a run of `work` for `key` that started after this call has
        finished (this caller's, or another's). A run that raises serves nobody: the
        exception goes to the caller that ran it, and a waiting caller runs it again."""
        with self._changed:
            runs = self._runs.setdefault(key, _Runs())
            runs.callers += 1
            needed = runs.started + 1
            try:
                while runs.finished < needed:
                    if runs.running:
                        self._changed.wait()
                        continue
                    runs.running = True
                    runs.started += 1
                    mine = runs.started
                    self._changed.release()
                    try:
                        work()
                    finally:
                        self._changed.acquire()
                        runs.running = False
                        self._changed.notify_all()
                    runs.finished = mine
            finally:
                runs.callers -= 1
                if not runs.callers:
                    del self._runs[key]
