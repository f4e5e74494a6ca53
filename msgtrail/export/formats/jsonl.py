"""JSON Lines: one object per row, every column a key, `null` where the CSV cell is
empty, times as ISO 8601 UTC strings; built by Arrow kernels a column at a time, as the
CSV lines are. Formula cells are not neutralised: programs read it, not spreadsheets."""

from __future__ import annotations

import pyarrow as pa

from msgtrail import csv_schema
from msgtrail.channels import CHANNEL_EVENTS
from msgtrail.export.columns import FEED_COLUMNS, feed_cell, recipient_cell
from msgtrail.export.formats.base import Format, Lines, json_objects


class JsonLines(Format):
    name = "jsonl"

    def recipient_lines(self, channel: str, raw: bool) -> Lines:
        return lambda table: recipient_lines(table, channel)

    def feed_lines(self, table: pa.Table | pa.RecordBatch) -> pa.Array:
        return json_objects(
            [(c, csv_schema.iso_utc(feed_cell(table, c)) if c == "timestamp"
              else feed_cell(table, c, constants=True)) for c in FEED_COLUMNS],
            plain={"subscription_id", "event", "timestamp", "onesignal_id"})


def recipient_lines(table: pa.Table | pa.RecordBatch, channel: str) -> pa.Array:
    """Each recipient as one JSON object and a newline."""
    cells = []
    for column in csv_schema.columns(channel):
        value = recipient_cell(table, column)
        cells.append((column, csv_schema.iso_utc(value) if column in CHANNEL_EVENTS[channel]
                      else value))
    return json_objects(cells, plain={"subscription_id", "onesignal_id",
                                      *CHANNEL_EVENTS[channel]})


FORMAT = JsonLines()
