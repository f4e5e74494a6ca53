"""The activity store: append events to the log, fold them into per-recipient rows.

Ingestion appends to `activity_log` only (sequential writes: ~200,000 events/s on
SQLite, COPY on PostgreSQL). Folding merges a message's pending log rows, grouped and
sorted by subscription, into `recipients`, keeping the earliest time of each event;
that is where repeats of the same (message, subscription, event) collapse, so retries
are safe. The worker folds in the background; readers fold a message before they read.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from functools import cache

from sqlalchemy import Connection, Engine, text

from msgtrail import csv_schema
from msgtrail.channels import CHANNEL_EVENTS, EVENT_CODE, EVENTS, FAILURE_EVENTS, platform_key
from msgtrail.db import dialect
from msgtrail.event_batch import Row

# Log rows folded per transaction: large enough that the sorted merge touches each
# recipients page about once, small enough not to hold SQLite's write lock for long.
FOLD_CHUNK = 500_000
# The background fold waits for a message's events to pause this long, so that it
# does not take the write lock from a pipeline in full flow...
FOLD_QUIET_SECONDS = 2
# ...but folds anyway once events have waited this long.
FOLD_MAX_LAG_SECONDS = 60
# PostgreSQL: a fold this large refreshes its partition's statistics, so that the
# planner knows the day's partition grew (autovacuum would, a minute or more later).
ANALYZE_AFTER_ROWS = 50_000

LOG_COLUMNS = ("message_pk", "batch", "seq", "subscription_id", "event", "ts", "onesignal_id",
               "external_id", "device_type", "failure_message")
_ATTRS = ("onesignal_id", "external_id", "device_type", "failure_message")


@cache
def fold_sql(channel: str, db: str) -> str:
    """Merge a message's log rows up to a batch into recipients, keeping the earliest
    time of each event and the first known attributes (a value already folded stays;
    among new rows, the first accepted), and rewriting the CSV line."""
    events = CHANNEL_EVENTS[channel]
    pivots = ", ".join(f"min(CASE WHEN event = {EVENT_CODE[e]} THEN ts END) AS {e}"
                       for e in events)
    attrs = ", ".join(f"{_first_known(a, db)} AS {a}" for a in _ATTRS)
    merged = {a: f"coalesce(recipients.{a}, excluded.{a})" for a in _ATTRS}
    merged.update({e: f"CASE WHEN recipients.{e} IS NULL OR excluded.{e} < recipients.{e}"
                      f" THEN excluded.{e} ELSE recipients.{e} END" for e in events})
    names = ", ".join((*_ATTRS, *events))
    def merged_ref(column: str) -> str:
        return f"({merged[column]})" if column in merged else f"recipients.{column}"

    new_line, new_raw = _lines(channel, lambda c: c, db)
    merged_line, merged_raw = _lines(channel, merged_ref, db)
    updates = ", ".join(f"{c} = {expr}" for c, expr in merged.items())
    return (
        f"INSERT INTO recipients (message_pk, subscription_id, msg_day, {names}, line,"
        f" raw_line) SELECT message_pk, subscription_id, :day, {names}, {new_line},"
        f" {new_raw} FROM ("
        f"SELECT message_pk, subscription_id, {attrs}, {pivots} FROM ("
        f"SELECT *{_order_key(db)} FROM activity_log"
        " WHERE message_pk = :pk AND batch <= :upto) AS log GROUP BY message_pk, subscription_id"
        " ORDER BY subscription_id) AS pending WHERE true"
        f" ON CONFLICT ({dialect.recipients_key(db)}) DO UPDATE SET {updates},"
        f" line = {merged_line}, raw_line = {merged_raw}"
    )


def _lines(channel: str, ref: Callable[[str], str], db: str) -> tuple[str, str]:
    """SQL for a recipient's two stored lines: `line`, with formula cells neutralised
    (what exports write by default), and `raw_line`, the values as given, stored only
    where it differs (a rare row), so that `csv_raw` exports read
    coalesce(raw_line, line) and the common row costs no second copy."""
    raw = (f"CASE WHEN {csv_schema.has_formula_sql(ref, db)}"
           f" THEN {csv_schema.line_sql(channel, ref, db, safe=False)} END")
    return csv_schema.line_sql(channel, ref, db), raw


def _first_known(column: str, db: str) -> str:
    """The value of `column` in the first log row that has one, in the order the rows
    were accepted (batch, then position in the batch): what the README promises.
    SQLite has no ordered aggregate: there it is the minimum of the row's fixed-width
    order key (`ord`) with the value appended, cut off again. Either costs the fold
    time over max() (measured in the README)."""
    if db == dialect.POSTGRES:
        return (f"(array_agg({column} ORDER BY batch, seq)"
                f" FILTER (WHERE {column} IS NOT NULL))[1]")
    return f"substr(min(CASE WHEN {column} IS NOT NULL THEN ord || {column} END), 21)"


def _order_key(db: str) -> str:
    """SQLite: batch and seq as one fixed-width (10 + 10 digits) text key."""
    return "" if db == dialect.POSTGRES else ", printf('%010d%010d', batch, seq) AS ord"


def append(conn: Connection, message_pk: int, rows: Sequence[Row], at: int) -> None:
    """Append validated events of one message to the log, in the caller's write
    transaction, as the message's next batch."""
    # Numbering under the message row's lock: concurrent appends never share a batch.
    batch = conn.execute(text(
        "UPDATE messages SET next_batch = next_batch + 1, last_ingest_at = :at,"
        " pending_since = coalesce(pending_since, :at) WHERE id = :pk RETURNING next_batch"),
        {"at": at, "pk": message_pk}).scalar_one()
    if dialect.name(conn) == dialect.POSTGRES:
        cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        with cursor.copy(f"COPY activity_log ({', '.join(LOG_COLUMNS)}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row((message_pk, batch, *row))
        return
    # SQLite: both integers go into the statement itself so that rows bind as they are.
    conn.exec_driver_sql(
        f"INSERT INTO activity_log ({', '.join(LOG_COLUMNS)})"
        f" VALUES ({int(message_pk)}, {int(batch)}, ?, ?, ?, ?, ?, ?, ?, ?)", list(rows))


def has_pending(conn: Connection, message_pk: int) -> bool:
    return conn.execute(text("SELECT 1 FROM activity_log WHERE message_pk = :pk LIMIT 1"),
                        {"pk": message_pk}).first() is not None


def fold_chunk(engine: Engine, message_pk: int, chunk: int | None = FOLD_CHUNK) -> int:
    """Fold the oldest pending batches of a message, about `chunk` events (None: all
    of them); returns how many log rows were folded (0: nothing was pending)."""
    with engine.begin() as conn:
        dialect.lock_message(conn, message_pk)
        channel, created, seen_batch, pending_since = conn.execute(text(
            "SELECT target_channel, created_at, next_batch, pending_since FROM messages"
            " WHERE id = :pk"), {"pk": message_pk}).one()
        # Every append sets pending_since in its own transaction, and only a fold that
        # left nothing pending clears it: when it is unset, there is nothing to fold,
        # and the log need not be searched (right after a large fold its index is full
        # of dead entries: 80-190 ms per export on 2,000,000 recipients).
        if pending_since is None:
            return 0
        params = {"pk": message_pk}
        upto = None if chunk is None else conn.execute(text(
            "SELECT batch FROM activity_log WHERE message_pk = :pk ORDER BY batch, seq"
            " LIMIT 1 OFFSET :skip"), {**params, "skip": chunk - 1}).scalar()
        if upto is None:
            upto = conn.execute(text(
                "SELECT max(batch) FROM activity_log WHERE message_pk = :pk"), params).scalar()
            if upto is None:
                return 0
        day = created // dialect.PARTITION_SECONDS
        dialect.ensure_partition(conn, day)
        conn.execute(text(fold_sql(channel, dialect.name(conn))),
                     {**params, "upto": upto, "day": day})
        folded = conn.execute(text(
            "DELETE FROM activity_log WHERE message_pk = :pk AND batch <= :upto"),
            {**params, "upto": upto}).rowcount
        if folded >= ANALYZE_AFTER_ROWS and dialect.name(conn) == dialect.POSTGRES:
            conn.execute(text(f"ANALYZE {dialect.partition(day)}"))
        if not has_pending(conn, message_pk):
            _store_stats(conn, message_pk, channel)
            # Only if no append began since we looked: one that did has moved next_batch,
            # and PostgreSQL rechecks this on the row version it waited for.
            conn.execute(text("UPDATE messages SET pending_since = NULL"
                              " WHERE id = :pk AND next_batch = :seen"),
                         {**params, "seen": seen_batch})
        return max(folded, 1)


def fold_message(engine: Engine, message_pk: int) -> None:
    """Fold every pending log row of a message, so that reads see all its activity.

    In one statement, not in chunks: a reader is waiting, and chunks upsert most
    recipients twice (a recipient's `sent` and its `delivered` land in different
    chunks), which doubled the fold of 2M events (DESIGN.md, "The fold, measured").
    Only the background fold, which nobody waits for, takes chunks, so as not to hold
    SQLite's write lock for long."""
    while fold_chunk(engine, message_pk, chunk=None):
        pass


def fold_next(engine: Engine, now: int) -> bool:
    """Fold one chunk of the message whose events have waited longest, once they have
    paused or waited too long; False when there is nothing to fold yet."""
    with engine.connect() as conn:
        message_pk = conn.execute(text(
            "SELECT id FROM messages WHERE pending_since IS NOT NULL"
            " AND (last_ingest_at <= :quiet OR pending_since <= :lag)"
            " ORDER BY pending_since LIMIT 1"),
            {"quiet": now - FOLD_QUIET_SECONDS, "lag": now - FOLD_MAX_LAG_SECONDS}).scalar()
        conn.rollback()
    if message_pk is None:
        return False
    fold_chunk(engine, message_pk)
    return True


def _store_stats(conn: Connection, message_pk: int, channel: str) -> None:
    """Recompute a message's delivery counters from its recipients."""
    failed = " OR ".join(f"{e} IS NOT NULL" for e in FAILURE_EVENTS)
    counts = ", ".join(f"count({e})" for e in EVENTS)
    sql = (f"SELECT device_type, count(*), sum(CASE WHEN {failed} THEN 1 ELSE 0 END), {counts}"
           " FROM recipients WHERE message_pk = :pk GROUP BY device_type")
    totals = {"recipients": 0, "failed": 0, **{e: 0 for e in EVENTS}}
    platforms: dict[str, dict[str, int]] = {}
    for device_type, n, n_failed, *per_event in conn.execute(text(sql), {"pk": message_pk}):
        part = {"recipients": n, "failed": int(n_failed),
                **dict(zip(EVENTS, per_event, strict=True))}
        for key, value in part.items():
            totals[key] += value
        slot = platforms.setdefault(platform_key(device_type, channel or "push"),
                                    {k: 0 for k in part})
        for key, value in part.items():
            slot[key] += value
    conn.execute(text("UPDATE messages SET stats = :stats WHERE id = :pk"),
                 {"stats": json.dumps({"totals": totals, "platforms": platforms}),
                  "pk": message_pk})
