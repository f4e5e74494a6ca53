"""The columns each kind of export writes, with their types, whatever the format: a
message's recipients (one row each, OneSignal's CSV columns: `csv_schema`) and an app's
events (one row each, the activity feed's)."""

from __future__ import annotations

import pyarrow as pa

from msgtrail import csv_schema
from msgtrail.channels import CHANNEL_EVENTS

# Times in typed formats: Parquet has no seconds unit; the values are whole seconds.
UTC_TIME = pa.timestamp("ms", tz="UTC")


def recipient_columns(channel: str) -> list[dict[str, str]]:
    """Each recipient column's name and type, for the manifest."""
    return [{"name": c, "type": "timestamp" if c in CHANNEL_EVENTS[channel] else "string"}
            for c in csv_schema.columns(channel)]


def recipient_schema(channel: str) -> pa.Schema:
    return pa.schema([(c, UTC_TIME if c in CHANNEL_EVENTS[channel] else pa.string())
                      for c in csv_schema.columns(channel)])


def recipient_cell(table: pa.Table | pa.RecordBatch, column: str) -> pa.Array:
    """A recipient column's values, from the pivot's columns."""
    return csv_schema.one_array(table.column(csv_schema.SOURCE.get(column, column)))


FEED_COLUMNS = ("message_id", "channel", "subscription_id", "event", "timestamp",
                "onesignal_id", "external_id", "device_type", "failure_message")
FEED_ATTRIBUTES = ("onesignal_id", "external_id", "device_type")
_DICTIONARY = pa.dictionary(pa.int32(), pa.string())
FEED_SCHEMA = pa.schema([
    (c, UTC_TIME if c == "timestamp"
     else _DICTIONARY if c in ("message_id", "channel", "event") else pa.string())
    for c in FEED_COLUMNS])


def feed_columns() -> list[dict[str, str]]:
    """Each feed column's name and type, for the manifest."""
    return [{"name": c, "type": "timestamp" if c == "timestamp" else "string"}
            for c in FEED_COLUMNS]


def feed_cell(table: pa.Table | pa.RecordBatch, column: str,
              constants: bool = False) -> pa.Array | pa.Scalar:
    """A feed column as one array of plain values; with `constants`, a column of one
    value throughout (the message, its channel) as that value."""
    value = csv_schema.one_array(table.column(column))
    if isinstance(value, pa.DictionaryArray):
        if constants and len(value.dictionary) == 1:
            return value.dictionary[0]
        return value.dictionary_decode()
    return value


def attribute_cells(table: pa.Table | pa.RecordBatch) -> pa.Array:
    """Each recipient's onesignal_id, external_id and device_type as CSV cells."""
    return csv_schema.joined_cells([
        csv_schema.one_array(table.column("onesignal_id")),
        *(csv_schema.quoted(csv_schema.one_array(table.column(a)))
          for a in ("external_id", "device_type"))], end="")
