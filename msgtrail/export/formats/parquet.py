"""Parquet: typed columns, times as `timestamp[ms, UTC]`, the rest strings (the feed's
message, channel and event dictionary-encoded); compressed inside, by column."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pyarrow as pa

from msgtrail import csv_schema
from msgtrail.channels import CHANNEL_EVENTS
from msgtrail.export.columns import (
    FEED_COLUMNS,
    FEED_SCHEMA,
    feed_cell,
    recipient_cell,
    recipient_schema,
)
from msgtrail.export.formats.base import Format, utc_time


class Parquet(Format):
    name = "parquet"
    compression = "none"
    text = False

    def recipient_table(self, table: pa.Table | pa.RecordBatch, channel: str) -> pa.Table:
        arrays = []
        for column in csv_schema.columns(channel):
            value = recipient_cell(table, column)
            if column in CHANNEL_EVENTS[channel]:
                value = utc_time(value)
            arrays.append(value.cast(pa.string()) if not pa.types.is_timestamp(value.type)
                          else value)
        return pa.Table.from_arrays(arrays, schema=recipient_schema(channel))

    def feed_table(self, table: pa.Table | pa.RecordBatch) -> pa.Table:
        arrays = [utc_time(feed_cell(table, c)) if c == "timestamp"
                  else table.column(c).cast(FEED_SCHEMA.field(c).type) for c in FEED_COLUMNS]
        return pa.Table.from_arrays(arrays, schema=FEED_SCHEMA)

    @contextmanager
    def writer(self, out: Any, header: bytes,
               schema: pa.Schema | None) -> Iterator[Callable[[Any], Any]]:
        """A Parquet writer's tables (its footer written at the end, rows or none)."""
        # Imported here: it adds megabytes to every serve and worker process, and most
        # never write Parquet.
        import pyarrow.parquet as pq

        with pq.ParquetWriter(pa.PythonFile(out, mode="w"), schema) as parquet:
            yield parquet.write_table


FORMAT = Parquet()
