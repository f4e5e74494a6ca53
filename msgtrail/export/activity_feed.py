"""An app's activity as one row per event, for warehouses, and the cursor that carries
on where the previous export stopped.

An event is one (message, subscription, event), as ingestion defines it: its repeats
collapse, its time is the earliest of theirs, and it was *recorded* by the batch that
first held it (its smallest `rec`, see `msgtrail.store.activity`; compaction keeps it).

The cursor: a message's batches are numbered under its row's lock, in the transaction
that stores them, so they commit in number order, and a snapshot sees of each message
exactly the batches up to the `next_batch` it sees there. An export keeps those numbers
(`marks`, one per message of the app); the export given its cursor writes only the
events first recorded in later batches. So a chain of exports, each given the previous
one's cursor, writes every event exactly once, however API processes interleave their
commits, and a worker that dies mid-export leaves no trace: the retried attempt takes
a snapshot of its own and the marks are stored with the finished file (docs/exports.md).
"""

from __future__ import annotations

import json
from collections.abc import Generator, Iterator
from contextlib import closing
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from msgtrail import csv_schema
from msgtrail.channels import CHANNEL_EVENTS, FAILURE_EVENTS
from msgtrail.db import statements as sql
from msgtrail.export.columns import FEED_ATTRIBUTES, attribute_cells, feed_columns
from msgtrail.store import pages, pivot
from msgtrail.store.activity import query
from msgtrail.store.ahead import Ahead
from msgtrail.store.event_batch import REC_BITS


@dataclass(frozen=True)
class FeedMessage:
    """A message as an activity export reads it (not `messages.Message`, the API's)."""

    pk: int
    message_id: str
    channel: str
    # The last batch of the message the snapshot sees.
    upto: int


def columns() -> list[dict[str, str]]:
    """Each column's name and type, for the manifest."""
    return feed_columns()


def messages_of(raw: Any, app_pk: int) -> list[FeedMessage]:
    """The app's messages whose activity is kept, in the order they were created, each
    with the last batch this snapshot sees."""
    rows = query(raw, sql.APP_MESSAGES, app_pk=app_pk)
    return [FeedMessage(int(r[0]), str(r[1]), str(r[2]), int(r[3])) for r in rows]


def marks(messages: list[FeedMessage]) -> dict[str, int]:
    """What an export's cursor continues from: each message's last batch it saw."""
    return {str(m.pk): m.upto for m in messages}


def cursor_marks(raw: Any, app_pk: int, export_id: str) -> dict[str, int]:
    """The marks of the app's finished activity export `export_id`."""
    found = query(raw, sql.ACTIVITY_MARKS, export_id=export_id, app_pk=app_pk)
    row = found[0] if found else None
    if row is None or row[0] is None:
        raise ValueError(f"cursor {export_id} is not a finished activity export of the app")
    return {k: int(v) for k, v in json.loads(row[0]).items()}


def rows(raw: Any, messages: list[FeedMessage], params: dict[str, Any],
         after: dict[str, int], attribute_cell: bool = False
         ) -> Generator[pa.Table, None, None]:
    """The feed's rows in chunks, message by message (in `messages`' order), each in
    (subscription, event) order: the message's recipients (`msgtrail.store.recipients`: its
    pages when they are current, else the pivot), each unfolded into one row per event,
    on a thread of its own while the caller formats the rows before. A message the
    cursor has seen is pivoted with each event's first `rec`, and only events first
    recorded after its mark are kept."""
    with closing(Ahead(_unfolded(raw, messages, params, after, attribute_cell), depth=3,
                       name="unfold")) as tables:
        yield from tables


def _unfolded(raw: Any, messages: list[FeedMessage], params: dict[str, Any],
              after: dict[str, int], attribute_cell: bool) -> Iterator[pa.Table]:
    wanted = set(params.get("message_ids") or [])
    for message in messages:
        mark = after.get(str(message.pk), -1)
        if (wanted and message.message_id not in wanted) or message.upto <= mark:
            continue
        events = [e for e in CHANNEL_EVENTS[message.channel]
                  if not params.get("events") or e in params["events"]]
        if not events:
            continue
        stored = (pages.recipient_pages(raw, message.pk, message.channel)
                  if mark < 0 else None)
        source = (pages.page_rows(stored, events) if stored is not None else
                  pivot.rows(raw, message.pk, message.channel, events, recs=mark >= 0))
        with closing(source):
            for table in source:
                found = unfolded(table, message, events, params,
                                 (mark + 1) << REC_BITS if mark >= 0 else None,
                                 attribute_cell)
                if found.num_rows:
                    yield found


def unfolded(table: pa.Table | pa.RecordBatch, message: FeedMessage, events: list[str],
             params: dict[str, Any], first_rec: int | None,
             attribute_cell: bool = False) -> pa.Table:
    """Recipients' rows (sorted by subscription) as one row per event they have among
    `events`, in (subscription, event) order, within `since`/`until` and, if
    `first_rec` is given, first recorded at or after it. With `attribute_cell` (CSV),
    the three attribute cells come joined (`attributes`), built once per recipient
    rather than per event: line building was the export's slowest stage."""
    channel_events = CHANNEL_EVENTS[message.channel]
    width = len(channel_events)
    keys, times = [], []
    for event in events:
        ts = csv_schema.one_array(table.column(event)).cast(pa.int64())
        keep = pc.is_valid(ts)
        if params.get("since") is not None:
            keep = pc.and_(keep, pc.greater_equal(ts, int(params["since"])))
        if params.get("until") is not None:
            keep = pc.and_(keep, pc.less(ts, int(params["until"])))
        if first_rec is not None:
            keep = pc.and_(keep, pc.greater_equal(table.column(f"rec_{event}"), first_rec))
        keep = pc.fill_null(keep, False)
        # Each kept (recipient, event) as recipient * width + the event's place: sorting
        # these keys gives the rows in (subscription, event) order.
        at = pc.indices_nonzero(keep).cast(pa.int64())
        keys.append(pc.add(pc.multiply(at, width), channel_events.index(event)))
        times.append(pc.filter(ts, keep))
    key = pa.concat_arrays(keys)
    order = pc.sort_indices(key)
    key = key.take(order)
    row = pc.divide(key, width)
    place = pc.subtract(key, pc.multiply(row, width)).cast(pa.int32())
    failure = pc.is_in(place, value_set=pa.array(
        [i for i, e in enumerate(channel_events) if e in FAILURE_EVENTS], pa.int32()))
    # The message, its channel and the event as dictionaries: no string is copied per
    # row for them (CSV writes them as constants, Parquet as dictionaries).
    zeros = pa.repeat(pa.scalar(0, pa.int32()), len(key))
    return pa.table({
        "message_id": pa.DictionaryArray.from_arrays(zeros, [message.message_id]),
        "channel": pa.DictionaryArray.from_arrays(zeros, [message.channel]),
        "subscription_id": table.column("subscription_id").take(row),
        "event": pa.DictionaryArray.from_arrays(place, list(channel_events)),
        "timestamp": pa.concat_arrays(times).take(order),
        **({"attributes": attribute_cells(table).take(row)} if attribute_cell
           else {a: table.column(a).take(row) for a in FEED_ATTRIBUTES}),
        # Only on failure events: other rows take a null index.
        "failure_message": table.column("failure_message").take(
            pc.if_else(failure, row, pa.scalar(None, pa.int64()))),
    })
