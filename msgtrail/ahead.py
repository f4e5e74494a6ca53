"""An iterator run on its own thread, a few items ahead of its consumer: the stages of a
read (pivot a range, build its lines, compress them) then overlap on both cores, as
DuckDB, Arrow and ISA-L release the GIL."""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from typing import Generic, TypeVar

T = TypeVar("T")


class Ahead(Generic[T]):
    """Runs `source` on its own thread, from creation on, up to `depth` items ahead of
    the consumer; close() stops it (and the source's cleanup runs on that thread)."""

    _DONE = object()

    def __init__(self, source: Iterator[T], depth: int = 3, name: str = "ahead") -> None:
        self._source = source
        self._slots: queue.Queue = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._finished = False
        self._thread = threading.Thread(target=self._produce, name=name, daemon=True)
        self._thread.start()

    def _produce(self) -> None:
        try:
            for item in self._source:
                while not self._stop.is_set():
                    try:
                        self._slots.put(item, timeout=0.5)
                        break
                    except queue.Full:
                        continue
                if self._stop.is_set():
                    return
            self._slots.put(self._DONE)
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer, raised there
            self._slots.put(exc)
        finally:
            close = getattr(self._source, "close", None)
            if close:  # a generator's own cleanup (its connection, its files)
                close()

    def __iter__(self) -> Ahead[T]:
        return self

    def __next__(self) -> T:
        if self._finished:
            raise StopIteration
        item = self._slots.get()
        if item is self._DONE:
            self._finished = True
            raise StopIteration
        if isinstance(item, BaseException):
            self._finished = True
            raise item
        return item

    def close(self) -> None:
        self._stop.set()
        self._thread.join(30)
