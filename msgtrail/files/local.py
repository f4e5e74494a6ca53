"""Export files in a local directory, written under a temporary name and published by
an atomic rename."""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

from msgtrail.clock import exact
from msgtrail.files.base import Served

PARTIAL_DIR = ".partial"


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

    def reader(self, key: str) -> BinaryIO | None:
        try:
            return open(self.local_path(key), "rb")
        except (ValueError, FileNotFoundError):
            return None

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
        cutoff = exact() - older_than
        for path in (self.root / PARTIAL_DIR).glob("*.part"):
            if path.stat().st_mtime < cutoff:
                path.unlink(missing_ok=True)
                removed += 1
        return removed
