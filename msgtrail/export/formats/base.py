"""What every export format says: its name, its default compression, and how it writes
each kind of export's rows. Text formats write lines (built by Arrow kernels a table at
a time, compressed whole); binary formats write typed tables through their own writer."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from msgtrail.export.columns import UTC_TIME

COMPRESSIONS = ("gzip", "none")
# The characters JSON forbids raw in a string, written as \u00XX.
_CONTROL = r"[\x00-\x1f]"

Lines = Callable[[pa.Table | pa.RecordBatch], pa.Array]


class Format:
    name = ""
    compression = "gzip"  # when the caller names none
    text = True  # written as lines; else as typed tables (`writer`)
    # The message's pages keep this format's lines ready-made (CSV).
    stored_lines = False
    # The feed's rows carry each recipient's attribute cells joined once (CSV).
    attribute_cell = False
    feed_header = b""

    def suffix(self, compression: str) -> str:
        """How a file of this format is named: `csv.gz`, `jsonl`…"""
        return self.name + (".gz" if compression == "gzip" else "")

    def recipient_header(self, channel: str) -> bytes:
        return b""

    def recipient_lines(self, channel: str, raw: bool) -> Lines:
        """Each recipient's line (text formats); unless `raw`, formula cells are
        neutralised where the format is opened by spreadsheets."""
        raise NotImplementedError(self.name)

    def recipient_table(self, table: pa.Table | pa.RecordBatch, channel: str) -> pa.Table:
        """The recipients as a typed table (binary formats)."""
        raise NotImplementedError(self.name)

    def feed_lines(self, table: pa.Table | pa.RecordBatch) -> pa.Array:
        """Each event's line (text formats)."""
        raise NotImplementedError(self.name)

    def feed_table(self, table: pa.Table | pa.RecordBatch) -> pa.Table:
        """The events as a typed table (binary formats)."""
        raise NotImplementedError(self.name)

    @contextmanager
    def writer(self, out: Any, header: bytes,
               schema: pa.Schema | None) -> Iterator[Callable[[Any], Any]]:
        """What writes each chunk to `out`: the header first, then each chunk's bytes."""
        out.write(header)
        yield out.write


def json_string(value: pa.Array) -> pa.Array:
    """Each string as a JSON string literal (quotes included); nulls stay null."""
    value = pc.replace_substring(pc.replace_substring(value, "\\", "\\\\"), '"', '\\"')
    if pc.any(pc.match_substring_regex(value, _CONTROL)).as_py():
        for code in range(0x20):
            value = pc.replace_substring(value, chr(code), json.dumps(chr(code))[1:-1])
    return pc.binary_join_element_wise('"', value, '"', "")


def json_objects(cells: list[tuple[str, pa.Array | pa.Scalar]],
                 plain: set[str] | frozenset[str] = frozenset()) -> pa.Array:
    """Each row as one JSON object of these (key, strings) and a newline; a null is
    `null`. The values of `plain` keys need no escaping (ids, names, ISO times): only
    quoted, which halved the cost of a feed's lines; a scalar is the same in every row."""
    pieces: list[pa.Array | str] = []
    for i, (key, value) in enumerate(cells):
        pieces.append(("{" if i == 0 else ",") + json.dumps(key) + ":")
        if isinstance(value, pa.Scalar):
            pieces.append(json.dumps(value.as_py()))
        elif key in plain:
            pieces.append(pc.fill_null(pc.binary_join_element_wise('"', value, '"', ""),
                                       "null"))
        else:
            pieces.append(pc.fill_null(json_string(value), "null"))
    pieces.append("}\n")
    merged: list[pa.Array | str] = []
    for piece in pieces:  # adjacent text as one piece: one input fewer to join
        if isinstance(piece, str) and merged and isinstance(merged[-1], str):
            merged[-1] += piece
        else:
            merged.append(piece)
    return pc.binary_join_element_wise(*merged, "")


def utc_time(seconds: pa.Array) -> pa.Array:
    """Unix seconds as typed UTC timestamps."""
    return seconds.cast(pa.int64()).cast(pa.timestamp("s", tz="UTC")).cast(UTC_TIME)
