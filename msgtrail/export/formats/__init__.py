"""The export file formats, one module each (`base.Format` says what a format
provides). A new format is a module here and one line below."""

from __future__ import annotations

from msgtrail.errors import BadRequest
from msgtrail.export.formats import csv, jsonl, parquet
from msgtrail.export.formats.base import COMPRESSIONS, Format

__all__ = ["COMPRESSIONS", "FORMATS", "Format", "get"]

FORMATS: dict[str, Format] = {f.name: f for f in (csv.FORMAT, jsonl.FORMAT, parquet.FORMAT)}


def get(name: str) -> Format:
    found = FORMATS.get(name)
    if found is None:
        raise BadRequest(f"format: must be one of {', '.join(FORMATS)}")
    return found
