"""The message-history report: OneSignal's CSV of who was sent, or who clicked.

Every value is double-quoted, as in OneSignal's sample; `timestamp` (unix seconds) is
filled only for clicked.
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

from msgtrail import csv_schema

HEADER = b"player_id,onesignal_id,external_id,target_channel,timestamp\n"
# Each column's name and type, for the file's manifest.
COLUMNS = [{"name": "player_id", "type": "string"}, {"name": "onesignal_id", "type": "string"},
           {"name": "external_id", "type": "string"}, {"name": "target_channel", "type": "string"},
           {"name": "timestamp", "type": "unix_seconds"}]
EVENTS = ("sent", "clicked")


def lines(table: pa.Table | pa.RecordBatch, channel: str, event: str,
          raw: bool = False) -> pa.Array:
    """Each recipient's report line, newline included, from a table with the recipients'
    columns; unless `raw`, an external id that starts a formula is neutralised (quoting
    a cell does not stop a spreadsheet from running it)."""
    if channel not in ("push", "email", "sms") or event not in EVENTS:
        raise ValueError(f"no history report for {channel}/{event}")
    external = csv_schema.one_array(table.column("external_id"))
    if not raw:
        external = csv_schema.neutralised(external)
    n = table.num_rows
    timestamp = (csv_schema.one_array(table.column("clicked")).cast(pa.string())
                 if event == "clicked" else pa.nulls(n, pa.string()))
    cells = [csv_schema.one_array(table.column("subscription_id")),
             csv_schema.one_array(table.column("onesignal_id")),
             pc.replace_substring(external, '"', '""'), pa.scalar(channel), timestamp]
    return csv_schema.joined_cells(cells, '","', start='"', end='"\n')
