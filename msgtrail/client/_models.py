"""What the client reports: progress while it works, the result when done."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Progress:
    """One step of an export: phase is requesting, waiting, downloading, verifying,
    converting or done; counts are None where the server does not tell them."""

    phase: str
    rows: int | None = None
    total_rows: int | None = None
    bytes: int | None = None
    total_bytes: int | None = None


@dataclass(frozen=True)
class ExportResult:
    """A finished export: the file on disk and what it holds."""

    path: Path
    rows: int
    bytes: int
    elapsed: float
    url: str
    export_id: str | None = None
    # An activity export's cursor: pass it to the next one to get only newer events.
    next_cursor: str | None = None
