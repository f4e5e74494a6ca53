"""Where export files live: one small interface (`base.BlobStore`), a local directory,
S3, or memory (tests) behind it; `open_store` picks one from a storage URL."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlparse

from msgtrail.files.base import BlobStore, HealthCheck, Served
from msgtrail.files.local import LocalStore
from msgtrail.files.memory import MemoryStore

__all__ = ["BlobStore", "HealthCheck", "LocalStore", "MemoryStore", "Served", "open_store"]


def open_store(url: str) -> BlobStore:
    """The store a storage URL names: a plain path or `file:///path`,
    `s3://BUCKET?endpoint=…&region=…`, or `memory://` (tests)."""
    parsed = urlparse(url)
    if parsed.scheme == "memory":
        return MemoryStore()
    if parsed.scheme in ("", "file"):
        return LocalStore(Path(parsed.path if parsed.scheme else url))
    if parsed.scheme == "s3":
        from msgtrail.files.s3 import from_url

        return from_url(url)
    raise ValueError(f"unsupported storage URL {url!r}: a directory or s3://BUCKET")
