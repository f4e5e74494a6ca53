"""The export formats besides OneSignal's CSV: JSON Lines and Parquet, with the CSV's
columns (`csv_schema.columns`).

- JSON Lines: one object per recipient, every column a key, `null` where the CSV cell
  is empty, event times as ISO 8601 UTC strings; built by Arrow kernels a column at a
  time, as the CSV lines are.
- Parquet: typed columns, event times as `timestamp[ms, UTC]` (Parquet has no
  seconds unit; the values are whole seconds), the rest strings.

Neither neutralises formula cells: they are read by programs, not spreadsheets.
"""

from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.compute as pc

from msgtrail import csv_schema
from msgtrail.channels import CHANNEL_EVENTS

FORMATS = ("csv", "jsonl", "parquet")
COMPRESSIONS = ("gzip", "none")
# Text is gzipped whole unless asked otherwise; Parquet compresses inside, by column.
DEFAULT_COMPRESSION = {"csv": "gzip", "jsonl": "gzip", "parquet": "none"}
UTC_TIME = pa.timestamp("ms", tz="UTC")
# The characters JSON forbids raw in a string, written as \u00XX.
_CONTROL = r"[\x00-\x1f]"


def suffix(fmt: str, compression: str) -> str:
    """How a file of this format and compression is named: `csv.gz`, `jsonl`…"""
    return fmt + (".gz" if compression == "gzip" else "")


def columns(channel: str) -> list[dict[str, str]]:
    """Each column's name and type, for the manifest."""
    return [{"name": c, "type": "timestamp" if c in CHANNEL_EVENTS[channel] else "string"}
            for c in csv_schema.columns(channel)]


def _source(table: pa.Table | pa.RecordBatch, column: str) -> pa.Array:
    return csv_schema.one_array(table.column(csv_schema.SOURCE.get(column, column)))


def json_string(value: pa.Array) -> pa.Array:
    """Each string as a JSON string literal (quotes included); nulls stay null."""
    value = pc.replace_substring(pc.replace_substring(value, "\\", "\\\\"), '"', '\\"')
    if pc.any(pc.match_substring_regex(value, _CONTROL)).as_py():
        for code in range(0x20):
            value = pc.replace_substring(value, chr(code), json.dumps(chr(code))[1:-1])
    return pc.binary_join_element_wise('"', value, '"', "")


def json_lines(table: pa.Table | pa.RecordBatch, channel: str) -> pa.Array:
    """Each recipient as one JSON object and a newline."""
    cells = []
    for column in csv_schema.columns(channel):
        value = _source(table, column)
        cells.append((column, csv_schema.iso_utc(value) if column in CHANNEL_EVENTS[channel]
                      else value))
    return json_objects(cells, plain={"subscription_id", "onesignal_id",
                                      *CHANNEL_EVENTS[channel]})


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


def parquet_table(table: pa.Table | pa.RecordBatch, channel: str) -> pa.Table:
    """The recipients with the CSV's columns, typed."""
    arrays = []
    for column in csv_schema.columns(channel):
        value = _source(table, column)
        if column in CHANNEL_EVENTS[channel]:
            value = utc_time(value)
        arrays.append(value.cast(pa.string()) if not pa.types.is_timestamp(value.type)
                      else value)
    return pa.Table.from_arrays(arrays, schema=parquet_schema(channel))


def utc_time(seconds: pa.Array) -> pa.Array:
    """Unix seconds as Parquet's UTC timestamps."""
    return seconds.cast(pa.int64()).cast(pa.timestamp("s", tz="UTC")).cast(UTC_TIME)


def parquet_schema(channel: str) -> pa.Schema:
    return pa.schema([(c, UTC_TIME if c in CHANNEL_EVENTS[channel] else pa.string())
                      for c in csv_schema.columns(channel)])
