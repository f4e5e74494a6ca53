"""The audience-activity CSV: columns per channel and how one row is written.

Columns follow OneSignal's documentation for push; email and SMS add their own events
after them. An event column holds that event's time (ISO 8601, UTC) or is empty.

Lines are built by Arrow compute kernels from a table of recipients (the pivot's
columns), a column at a time: less than half the time of the same line as a DuckDB
expression (docs/benchmarks.md, "Figures behind the code").
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

from msgtrail.channels import CHANNEL_EVENTS

PUSH_COLUMNS = ("external_user_id", "subscription_id", "device_type", "sent", "delivered",
                "clicked", "onesignal_id", "failed", "unsubscribed", "failure_message")

# Columns beyond push's, per channel, in the order they are appended.
EXTRA_COLUMNS = {
    "push": (),
    "email": ("opened", "bounced", "suppressed", "reported_spam"),
    "sms": ("suppressed", "rejected"),
}

# CSV column -> recipients column, where the names differ.
SOURCE = {"external_user_id": "external_id"}
_TEXT = ("external_user_id", "device_type", "failure_message")

# OWASP, "CSV Injection": a cell that a spreadsheet would run as a formula begins with
# = + - @, a tab or a carriage return. RFC 4180: a field holding a comma, a quote or a
# line break is quoted.
FORMULA_START = r"^[=+@\t\r-]"
NEEDS_QUOTES = r"[\",\r\n]"
_ISO = "%Y-%m-%dT%H:%M:%SZ"


def columns(channel: str) -> tuple[str, ...]:
    return PUSH_COLUMNS + EXTRA_COLUMNS[channel]


def header(channel: str) -> bytes:
    return (",".join(columns(channel)) + "\n").encode()


def event_columns(channel: str) -> tuple[str, ...]:
    return tuple(c for c in columns(channel) if c in CHANNEL_EVENTS[channel])


def lines(table: pa.Table | pa.RecordBatch, channel: str, safe: bool = True) -> pa.Array:
    """Each recipient's CSV line, newline included, from a table with the recipients'
    columns; `safe` neutralises formula cells (see `neutralised`)."""
    cells = []
    for column in columns(channel):
        value = one_array(table.column(SOURCE.get(column, column)))
        if column in _TEXT:
            cells.append(quoted(neutralised(value) if safe else value))
        elif column in CHANNEL_EVENTS[channel]:
            cells.append(iso_utc(value))
        else:  # ids, validated on the way in: nothing to quote
            cells.append(value)
    return joined_cells(cells)


def joined_cells(cells: list[pa.Array | pa.Scalar], sep: str = ",", start: str = "",
                 end: str = "\n") -> pa.Array:
    """Each row's cells joined by `sep` into a line from `start` to `end`, a null as an
    empty cell. Nulls are filled first: the join's own null replacement is several
    times slower. `start` and `end` go onto the first and last cells, not around the
    joined lines: wrapping the lines copies every byte once more."""
    filled = [pc.fill_null(c, "") if isinstance(c, pa.Array) and c.null_count else c
              for c in cells]
    if start:
        filled[0] = _around(filled[0], start, "")
    if end:
        filled[-1] = _around(filled[-1], "", end)
    return pc.binary_join_element_wise(*filled, sep)


def _around(cell: pa.Array | pa.Scalar, before: str, after: str) -> pa.Array | pa.Scalar:
    if isinstance(cell, pa.Scalar):
        return pa.scalar(before + str(cell.as_py()) + after)
    return pc.binary_join_element_wise(before, cell, after, "")


def has_formula(table: pa.Table | pa.RecordBatch, channel: str) -> bool:
    """Whether any text cell of the rows starts a formula (`lines` with and without
    `safe` then differ)."""
    return any(pc.any(pc.match_substring_regex(
        one_array(table.column(SOURCE.get(c, c))), FORMULA_START)).as_py()
        for c in columns(channel) if c in _TEXT)


def neutralised(value: pa.Array) -> pa.Array:
    """A formula cell gets a leading single quote, which spreadsheets show as text and
    do not evaluate; nulls stay null."""
    if value.null_count == len(value):
        return value
    formula = pc.match_substring_regex(value, FORMULA_START)
    if not pc.any(formula).as_py():
        return value
    return pc.if_else(formula, pc.binary_join_element_wise("'", value, ""), value)


def quoted(value: pa.Array) -> pa.Array:
    """RFC 4180: a field is quoted only when it holds a comma, quote or line break."""
    if not _may_hold(value, (b'"', b",", b"\r", b"\n")):
        return value
    needs = pc.match_substring_regex(value, NEEDS_QUOTES)
    if not pc.any(needs).as_py():
        return value
    return pc.if_else(needs, pc.binary_join_element_wise(
        '"', pc.replace_substring(value, '"', '""'), '"', ""), value)


def _may_hold(value: pa.Array, chars: tuple[bytes, ...]) -> bool:
    """False only if no value holds any of `chars`: a byte search of the values' text
    at once, far cheaper than the regular expression per value, and most columns hold
    none."""
    if value.null_count == len(value):
        return False
    if value.type != pa.string():
        return True  # the regular expression decides
    text = bytes(joined(value))
    return any(c in text for c in chars)


def joined(column: pa.Array) -> memoryview:
    """The column's strings end to end: its data buffer between the first and last
    offsets (lines each end in a newline), without a Python string per value and
    without a copy (the compressor copies what it queues; a second copy here is
    measurable)."""
    if column.type not in (pa.string(), pa.large_string()):
        column = column.cast(pa.large_string())
    offsets = memoryview(column.buffers()[1]).cast("q" if column.type == pa.large_string()
                                                   else "i")
    start, end = offsets[column.offset], offsets[column.offset + len(column)]
    data = column.buffers()[2]
    return memoryview(b"" if data is None else data.slice(start, end - start))


def iso_utc(seconds: pa.Array) -> pa.Array:
    """Unix seconds as `2026-11-23T10:00:00Z`; nulls stay null. Each distinct time is
    formatted once: a message's recipients share few seconds."""
    encoded = pc.dictionary_encode(seconds)
    text = pc.strftime(encoded.dictionary.cast(pa.timestamp("s")), _ISO)
    return pc.take(text, encoded.indices)


def one_array(column: pa.Array | pa.ChunkedArray) -> pa.Array:
    """One array, as text if it holds text (DuckDB hands strings over as views) or
    nothing at all."""
    if isinstance(column, pa.ChunkedArray):
        # One chunk as it is: combining copies it.
        column = column.chunk(0) if column.num_chunks == 1 else column.combine_chunks()
    if (pa.types.is_string_view(column.type) or pa.types.is_large_string(column.type)
            or pa.types.is_null(column.type)):
        column = column.cast(pa.string())
    return column
