"""An app's activity as one row per event, for warehouses, and the cursor that carries
on where the previous export stopped.

An event is one (message, subscription, event), as ingestion defines it: its repeats
collapse, its time is the earliest of theirs, and it was *recorded* by the batch that
first held it (its smallest `rec`, see `msgtrail.activity`; compaction keeps it).

The cursor: a message's batches are numbered under its row's lock, in the transaction
that stores them, so they commit in number order, and a snapshot sees of each message
exactly the batches up to the `next_batch` it sees there. An export keeps those numbers
(`marks`, one per message of the app); the export given its cursor writes only the
events first recorded in later batches. So a chain of exports, each given the previous
one's cursor, writes every event exactly once, however API processes interleave their
commits, and a worker that dies mid-export leaves no trace: the retried attempt takes
a snapshot of its own and the marks are stored with the finished file (README).
"""

from __future__ import annotations

import json
from collections.abc import Generator, Iterator
from contextlib import closing
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from msgtrail import csv_schema, file_formats, recipients
from msgtrail.activity import placeholder
from msgtrail.ahead import Ahead
from msgtrail.channels import CHANNEL_EVENTS, EVENT_CODE, EVENTS, FAILURE_EVENTS
from msgtrail.event_batch import REC_BITS

COLUMNS = ("message_id", "channel", "subscription_id", "event", "timestamp",
           "onesignal_id", "external_id", "device_type", "failure_message")
_TEXT = ("onesignal_id", "external_id", "device_type", "failure_message")
HEADER = (",".join(COLUMNS) + "\n").encode()
PARQUET_SCHEMA = pa.schema([(c, file_formats.UTC_TIME if c == "timestamp" else pa.string())
                            for c in COLUMNS])


@dataclass(frozen=True)
class Message:
    pk: int
    message_id: str
    channel: str
    # The last batch of the message the snapshot sees.
    upto: int


def columns() -> list[dict[str, str]]:
    """Each column's name and type, for the manifest."""
    return [{"name": c, "type": "timestamp" if c == "timestamp" else "string"}
            for c in COLUMNS]


def messages_of(raw: Any, app_pk: int) -> list[Message]:
    """The app's messages whose activity is kept, in the order they were created, each
    with the last batch this snapshot sees."""
    cursor = raw.cursor()
    try:
        rows = cursor.execute(
            "SELECT id, message_id, target_channel, next_batch FROM messages"
            f" WHERE app_pk = {placeholder(cursor)} AND purged_at IS NULL ORDER BY id",
            (app_pk,)).fetchall()
    finally:
        cursor.close()
    return [Message(int(r[0]), str(r[1]), str(r[2]), int(r[3])) for r in rows]


def marks(messages: list[Message]) -> dict[str, int]:
    """What an export's cursor continues from: each message's last batch it saw."""
    return {str(m.pk): m.upto for m in messages}


def cursor_marks(raw: Any, app_pk: int, export_id: str) -> dict[str, int]:
    """The marks of the app's finished activity export `export_id`."""
    cursor = raw.cursor()
    try:
        param = placeholder(cursor)
        row = cursor.execute(
            f"SELECT marks FROM jobs WHERE export_id = {param} AND app_pk = {param}"
            " AND kind = 'activity'", (export_id, app_pk)).fetchone()
    finally:
        cursor.close()
    if row is None or row[0] is None:
        raise ValueError(f"cursor {export_id} is not a finished activity export of the app")
    return {k: int(v) for k, v in json.loads(row[0]).items()}


def feed_sql(message: Message, params: dict[str, Any], after: int) -> str | None:
    """The message's events in one id range (`events`), as the feed's rows, in
    (subscription, event) order: those first recorded after batch `after` and within
    the filter. None when the filter's events are none of the message's channel."""
    wanted = params.get("events")
    codes = [EVENT_CODE[e] for e in (wanted or CHANNEL_EVENTS[message.channel])
             if e in CHANNEL_EVENTS[message.channel]]
    if not codes:
        return None
    having = [f"min(rec) >= {(after + 1) << REC_BITS}"] if after >= 0 else []
    if params.get("since") is not None:
        having.append(f"min(ts) >= {int(params['since'])}")
    if params.get("until") is not None:
        having.append(f"min(ts) < {int(params['until'])}")
    where = f"WHERE event IN ({', '.join(map(str, codes))})" if wanted else ""
    having_sql = f"HAVING {' AND '.join(having)}" if having else ""
    # The attributes are the recipient's first known values, whichever event carried
    # them (as in the per-recipient export); failure_message only on failure events.
    attrs = ", ".join(f"arg_min({a}, rec) FILTER (WHERE {a} IS NOT NULL) AS {a}"
                      for a in recipients.ATTRIBUTES)
    names = "[" + ", ".join(f"'{e}'" for e in EVENTS) + "]"
    failures = ", ".join(str(EVENT_CODE[e]) for e in FAILURE_EVENTS)
    # Ids and channel names are validated on the way in: safe to write as literals.
    return (
        f"WITH e AS (SELECT subscription_id, event, min(ts) AS ts FROM events {where}"
        f" GROUP BY subscription_id, event {having_sql}),"
        f" a AS (SELECT subscription_id, {attrs} FROM events"
        " WHERE subscription_id IN (SELECT subscription_id FROM e) GROUP BY subscription_id)"
        f" SELECT '{message.message_id}' AS message_id, '{message.channel}' AS channel,"
        f" e.subscription_id, {names}[e.event + 1] AS event, e.ts AS timestamp,"
        " a.onesignal_id, a.external_id, a.device_type,"
        f" CASE WHEN e.event IN ({failures}) THEN a.failure_message END AS failure_message"
        " FROM e JOIN a USING (subscription_id) ORDER BY e.subscription_id, e.event")


def rows(raw: Any, messages: list[Message], params: dict[str, Any],
         after: dict[str, int]) -> Generator[pa.RecordBatch, None, None]:
    """The feed's rows in chunks, message by message (in `messages`' order), each
    message's subscription-id ranges in key order; the next range is read from the
    store and pivoted on threads of their own while the caller formats this one."""
    wanted = set(params.get("message_ids") or [])
    todo = [m for m in messages
            if (not wanted or m.message_id in wanted) and m.upto > after.get(str(m.pk), -1)]
    with closing(Ahead(_pivoted(raw, todo, params, after), depth=1, name="pivot")) as tables:
        for table in tables:
            for batch in table.to_batches(recipients.CHUNK_ROWS):
                if batch.num_rows:
                    yield batch


def _ranges(raw: Any, messages: list[Message], params: dict[str, Any],
            after: dict[str, int]) -> Iterator[tuple[str, pa.Table]]:
    for message in messages:
        sql = feed_sql(message, params, after.get(str(message.pk), -1))
        if sql is None:
            continue
        with recipients.split(raw, message.pk) as sources:
            for source in sources:
                yield sql, source()


def _pivoted(raw: Any, messages: list[Message], params: dict[str, Any],
             after: dict[str, int]) -> Iterator[pa.Table]:
    """Each range's rows, in one DuckDB connection for the whole export (one per
    message cost a connection's setup per message)."""
    ranges = Ahead(_ranges(raw, messages, params, after), depth=1, name="range-reader")
    with recipients.connect() as con, closing(ranges):
        for sql, events in ranges:
            con.register("events", events)
            try:
                yield con.sql(sql).to_arrow_table()
            finally:
                con.unregister("events")


def _cell(table: pa.Table | pa.RecordBatch, column: str) -> pa.Array:
    return csv_schema.one_array(table.column(column))


def csv_lines(table: pa.Table | pa.RecordBatch) -> pa.Array:
    """Each event's CSV line, newline included. Cells are written as recorded (no
    formula neutralising): the feed is read by loaders, not spreadsheets."""
    cells = []
    for column in COLUMNS:
        value = _cell(table, column)
        if column == "timestamp":
            value = csv_schema.iso_utc(value)
        elif column in _TEXT:
            value = csv_schema.quoted(value)
        cells.append(value)
    return csv_schema.ended(pc.binary_join_element_wise(*cells, ",", null_handling="replace"))


def json_lines(table: pa.Table | pa.RecordBatch) -> pa.Array:
    """Each event as one JSON object: the CSV's columns as keys, `null` for none, the
    time as ISO 8601 UTC."""
    return file_formats.json_objects([
        (c, csv_schema.iso_utc(_cell(table, c)) if c == "timestamp" else _cell(table, c))
        for c in COLUMNS])


def parquet_table(table: pa.Table | pa.RecordBatch) -> pa.Table:
    """The events typed: the time as a UTC timestamp, the rest strings."""
    arrays = [file_formats.utc_time(_cell(table, c)) if c == "timestamp"
              else _cell(table, c).cast(pa.string()) for c in COLUMNS]
    return pa.Table.from_arrays(arrays, schema=PARQUET_SCHEMA)
