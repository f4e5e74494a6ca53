"""Export files in memory, for tests."""

from __future__ import annotations

import io
from collections.abc import Iterator
from contextlib import contextmanager
from typing import BinaryIO

from msgtrail.files.base import Served


class MemoryStore:
    """Files in a dict, for tests without a disk or a server (as httpx ships
    MockTransport); `broken` makes it refuse writes and report itself unhealthy."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.broken = False
        self.health_checks = 0

    @contextmanager
    def writer(self, key: str) -> Iterator[BinaryIO]:
        if self.broken:
            raise OSError("memory store is broken")
        buffer = io.BytesIO()
        yield buffer
        self.files[key] = buffer.getvalue()  # published only if the block ended cleanly

    def delete(self, key: str) -> None:
        self.files.pop(key, None)

    def reader(self, key: str) -> BinaryIO | None:
        data = self.files.get(key)
        return None if data is None else io.BytesIO(data)

    def healthy(self) -> bool:
        self.health_checks += 1
        return not self.broken

    def clean_partials(self, older_than: float) -> int:
        return 0

    def presign(self, key: str, seconds: float) -> str | None:
        return None

    def served(self, key: str, seconds: float) -> Served | None:
        data = self.files.get(key)
        return None if data is None else Served(data=data)
