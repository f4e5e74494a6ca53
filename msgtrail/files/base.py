"""The blob-store interface for export files: a file becomes visible only when
complete (a local rename, a completed S3 multipart upload), so a reader sees either
nothing or the whole file."""

from __future__ import annotations

import time
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Protocol


@dataclass(frozen=True)
class Served:
    """How a published file reaches a client: a URL of the store itself to redirect to,
    a local file (served with Range), or the bytes themselves."""

    url: str | None = None
    path: Path | None = None
    data: bytes | None = None


class BlobStore(Protocol):
    def writer(self, key: str) -> AbstractContextManager[BinaryIO]: ...
    def delete(self, key: str) -> None: ...
    def reader(self, key: str) -> BinaryIO | None:
        """The published file under `key`, to read from the start; None if there is none."""
        ...
    def healthy(self) -> bool: ...
    def clean_partials(self, older_than: float) -> int: ...
    def presign(self, key: str, seconds: float) -> str | None: ...
    def served(self, key: str, seconds: float) -> Served | None:
        """The file under `key` for a download valid `seconds`; None if there is none."""
        ...


class HealthCheck:
    """A store's `healthy()`, a good answer remembered for `ttl` seconds: every export
    request asks (503 when the store cannot be written), and a busy API should not
    double its requests to the store (an S3 HEAD or a probe file each time). A bad
    answer is not remembered, so the first request after the store is back succeeds."""

    def __init__(self, store: BlobStore, ttl: float = 5.0) -> None:
        self.store, self.ttl = store, ttl
        self._good_until = float("-inf")

    def __call__(self) -> bool:
        now = time.monotonic()
        if now < self._good_until:
            return True
        if not self.store.healthy():
            return False
        self._good_until = now + self.ttl  # racing threads may both ask: harmless
        return True
