"""Blob stores for export files: one small interface, a local directory or S3 behind it.

A file becomes visible only when complete: locally it is written under a temporary name
and published by an atomic rename, in S3 by completing a multipart upload; a reader
sees either nothing or the whole file.
"""

from __future__ import annotations

import contextlib
import io
import os
import time
import uuid
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Protocol
from urllib.parse import urlparse

PARTIAL_DIR = ".partial"


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


class LocalStore:
    """Files under a root directory; `local_path` lets the API serve them."""

    def __init__(self, root: Path) -> None:
        # Directories are made when written to, not here: a process starts (and reports
        # the trouble per job and as 503) even while its storage is unavailable.
        self.root = root.resolve()

    def _partial(self) -> Path:
        path = self.root / PARTIAL_DIR / f"{uuid.uuid4()}.part"
        path.parent.mkdir(parents=True, exist_ok=True)
        return path

    def local_path(self, key: str) -> Path:
        path = (self.root / key).resolve()
        if self.root not in path.parents or PARTIAL_DIR in path.parts:
            raise ValueError(f"invalid key {key!r}")
        return path

    @contextmanager
    def writer(self, key: str) -> Iterator[BinaryIO]:
        """A file to write; published under `key` only if the block ends cleanly."""
        final = self.local_path(key)
        partial = self._partial()
        with open(partial, "wb") as handle:
            try:
                yield handle
                handle.flush()
                os.fsync(handle.fileno())
            except BaseException:
                handle.close()
                partial.unlink(missing_ok=True)
                raise
        final.parent.mkdir(parents=True, exist_ok=True)
        os.replace(partial, final)

    def delete(self, key: str) -> None:
        path = self.local_path(key)
        path.unlink(missing_ok=True)
        with contextlib.suppress(OSError):
            path.parent.rmdir()  # the key's random directory, now empty

    def healthy(self) -> bool:
        try:
            probe = self._partial()
            probe.write_bytes(b"")
            probe.unlink()
            return True
        except OSError:
            return False

    def presign(self, key: str, seconds: float) -> str | None:
        """None: the API itself serves local files."""
        return None

    def served(self, key: str, seconds: float) -> Served | None:
        try:
            path = self.local_path(key)
        except ValueError:
            return None
        return Served(path=path) if path.is_file() else None

    def clean_partials(self, older_than: float) -> int:
        """Remove temporary files that crashed writers left behind."""
        removed = 0
        cutoff = time.time() - older_than
        for path in (self.root / PARTIAL_DIR).glob("*.part"):
            if path.stat().st_mtime < cutoff:
                path.unlink(missing_ok=True)
                removed += 1
        return removed


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


def open_store(url: str) -> BlobStore:
    """The store a storage URL names: a plain path or `file:///path`,
    `s3://BUCKET?endpoint=…&region=…`, or `memory://` (tests)."""
    parsed = urlparse(url)
    if parsed.scheme == "memory":
        return MemoryStore()
    if parsed.scheme in ("", "file"):
        return LocalStore(Path(parsed.path if parsed.scheme else url))
    if parsed.scheme == "s3":
        from msgtrail.s3_store import from_url

        return from_url(url)
    raise ValueError(f"unsupported storage URL {url!r}: a directory or s3://BUCKET")
