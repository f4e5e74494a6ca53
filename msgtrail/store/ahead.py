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
    """Runs `source` on its own thread, from creation on, at most `depth` items ahead of
    the consumer, counting the one it is making: with depth 1 it makes the next item
    while the consumer works on the current one, then waits for it to be taken. Every
    item held costs memory (a range's events, a pivot, a chunk of lines), so no more
    are made than keep the stages busy. close() stops it (and the source's cleanup
    runs on that thread)."""

    _DONE = object()

    def __init__(self, source: Iterator[T], depth: int, name: str = "ahead") -> None:
        self._source = source
        self._items = iter(source)
        self._slots: queue.Queue = queue.Queue()
        self._room = threading.Semaphore(depth)  # taken to make an item, given back when consumed
        self._stop = threading.Event()
        self._finished = False
        self._thread = threading.Thread(target=self._produce, name=name, daemon=True)
        self._thread.start()

    def _produce(self) -> None:
        try:
            while True:
                while not self._room.acquire(timeout=0.5):
                    if self._stop.is_set():
                        return
                if self._stop.is_set():
                    return
                item = next(self._items, self._DONE)
                self._slots.put(item)
                if item is self._DONE:
                    return
                item = None  # the consumer's now: held here, it could outlive its use
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
        self._room.release()
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
