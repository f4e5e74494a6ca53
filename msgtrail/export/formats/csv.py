"""CSV, OneSignal's format: the recipients' lines as `csv_schema` builds them (formula
cells neutralised unless raw), stored ready-made in a message's pages; the feed's
events written as recorded (it is read by loaders, not spreadsheets)."""

from __future__ import annotations

import pyarrow as pa

from msgtrail import csv_schema
from msgtrail.export.columns import FEED_COLUMNS, feed_cell
from msgtrail.export.formats.base import Format, Lines
from msgtrail.store import pivot


class Csv(Format):
    name = "csv"
    stored_lines = True
    attribute_cell = True
    feed_header = (",".join(FEED_COLUMNS) + "\n").encode()

    def recipient_header(self, channel: str) -> bytes:
        return csv_schema.header(channel)

    def recipient_lines(self, channel: str, raw: bool) -> Lines:
        return pivot.export_line(channel, raw)

    def feed_lines(self, table: pa.Table | pa.RecordBatch) -> pa.Array:
        cells = [feed_cell(table, c, constants=True) for c in ("message_id", "channel",
                                                                "subscription_id", "event")]
        cells += [csv_schema.iso_utc(feed_cell(table, "timestamp")),
                  feed_cell(table, "attributes"),
                  csv_schema.quoted(feed_cell(table, "failure_message"))]
        return csv_schema.joined_cells(cells)


FORMAT = Csv()
