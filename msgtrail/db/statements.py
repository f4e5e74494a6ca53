"""Every hand-written SQL statement, in one place, with named parameters.

Schema and portable queries are SQLAlchemy Core where they are used. What is here is
what Core would only obscure, or cannot run where it must:

- writes whose shape is tuned (RETURNING, ON CONFLICT DO NOTHING, the upkeep's pick),
  run by SQLAlchemy on a Connection (`text()`);
- `Read`s: the store's queries on a snapshot's DB-API connection
  (`activity.snapshot`), which SQLAlchemy does not wrap, so that a long read holds no
  lock and PostgreSQL sends bytea in binary. SQLAlchemy compiles each once per
  dialect at import (`:name` for sqlite3, `%(name)s` for psycopg); nothing is
  rewritten when it runs.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.dialects.postgresql import psycopg

POSTGRES = "postgresql"


@dataclass(frozen=True)
class Read:
    """One query of a snapshot, its text per dialect."""

    sqlite: str
    postgresql: str


def read(sql: str) -> Read:
    return Read(sql, str(text(sql).compile(dialect=psycopg.dialect())))


# A snapshot: a read transaction that sees one state throughout and takes no lock
# (SQLite: a deferred BEGIN, not the engine's BEGIN IMMEDIATE).
BEGIN_SNAPSHOT = {POSTGRES: "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY",
                  "sqlite": "BEGIN"}

# PostgreSQL: a lock held until the transaction ends (SQLite's write lock is one).
ADVISORY_LOCK = text("SELECT pg_advisory_xact_lock(:key)")

# --- Activity segments (store/activity.py)

# A message's next batch number, taken by an append: the row lock orders appends, and
# a message's batches are numbered in the order they commit.
NEXT_BATCH = text(
    "UPDATE messages SET next_batch = next_batch + 1, last_ingest_at = :at,"
    " pending_since = coalesce(pending_since, :at) WHERE id = :pk RETURNING next_batch")
INSERT_SEGMENT = text(
    "INSERT INTO activity_segments (message_pk, first_batch, last_batch, events, data, part)"
    " VALUES (:pk, :first, :last, :n, :data, :part)")

SEGMENTS_AFTER = read(
    "SELECT id FROM activity_segments WHERE message_pk = :pk AND last_batch > :after"
    " ORDER BY id")
SEGMENT_DATA = read("SELECT data FROM activity_segments WHERE id = :id")
# Parts holding small segments to merge (any of no part is one).
SMALL_PARTS = read(
    "SELECT part FROM activity_segments WHERE message_pk = :pk AND events < :small"
    " GROUP BY part HAVING count(*) > 1 OR part IS NULL")
# A part's oldest small segments (one statement each way: `part = NULL` matches nothing).
SMALL_OF_PART = read(
    "SELECT id, first_batch, last_batch, events FROM activity_segments"
    " WHERE message_pk = :pk AND part = :part AND events < :small ORDER BY id LIMIT :limit")
SMALL_OF_NO_PART = read(
    "SELECT id, first_batch, last_batch, events FROM activity_segments"
    " WHERE message_pk = :pk AND part IS NULL AND events < :small ORDER BY id LIMIT :limit")
# Their data: the segments just listed are the first of these, so a range of ids in
# the same snapshot finds exactly them, in one query.
SMALL_DATA_OF_PART = read(
    "SELECT data FROM activity_segments WHERE message_pk = :pk AND part = :part"
    " AND events < :small AND id BETWEEN :first AND :last ORDER BY id")
SMALL_DATA_OF_NO_PART = read(
    "SELECT data FROM activity_segments WHERE message_pk = :pk AND part IS NULL"
    " AND events < :small AND id BETWEEN :first AND :last ORDER BY id")
# A message's events, and how many of its segments are of no part.
EVENTS_AND_UNPARTED = read(
    "SELECT coalesce(sum(events), 0), coalesce(sum(CASE WHEN part IS NULL THEN 1 ELSE 0 END), 0)"
    " FROM activity_segments WHERE message_pk = :pk")
# The segments of parts first..last, in the index's order: sorting by id alone put
# every blob through a temporary B-tree on SQLite (docs/benchmarks.md, "Figures
# behind the code").
PARTS_DATA = read(
    "SELECT data FROM activity_segments WHERE message_pk = :pk"
    " AND part BETWEEN :first AND :last ORDER BY part, id")
# One part's segments and their sizes, then their data by a range of ids: a part of a
# big message is read in pieces, never held whole (`pivot.split`).
PART_SEGMENTS = read(
    "SELECT id, events FROM activity_segments WHERE message_pk = :pk AND part = :part"
    " ORDER BY part, id")
PART_DATA_BETWEEN = read(
    "SELECT data FROM activity_segments WHERE message_pk = :pk AND part = :part"
    " AND id BETWEEN :first AND :last ORDER BY part, id")
NEWER_EVENTS = read(
    "SELECT coalesce(sum(events), 0) FROM activity_segments"
    " WHERE message_pk = :pk AND last_batch > :after")

# --- Messages as a snapshot sees them

MESSAGE_BATCHES = read("SELECT next_batch FROM messages WHERE id = :pk")
MESSAGE_PAGES_STATE = read(
    "SELECT next_batch, pages_upto, pages_generation, target_channel FROM messages"
    " WHERE id = :pk")
APP_MESSAGES = read(
    "SELECT id, message_id, target_channel, next_batch FROM messages"
    " WHERE app_pk = :app_pk AND purged_at IS NULL ORDER BY id")
ACTIVITY_MARKS = read(
    "SELECT marks FROM jobs WHERE export_id = :export_id AND app_pk = :app_pk"
    " AND kind = 'activity'")

# --- Recipient pages (store/pages.py)

ANY_PAGE = read(
    "SELECT 1 FROM recipient_pages WHERE message_pk = :pk AND generation = :g LIMIT 1")
PAGES_ROWS = read(
    "SELECT coalesce(sum(rows), 0) FROM recipient_pages WHERE message_pk = :pk"
    " AND generation = :g")
PAGE_NUMBERS = read(
    "SELECT page FROM recipient_pages WHERE message_pk = :pk AND generation = :g"
    " ORDER BY page")
PAGE_DATA = read(
    "SELECT data FROM recipient_pages WHERE message_pk = :pk AND generation = :g"
    " AND page = :page")
# Published only if nothing newer was published meanwhile.
PUBLISH_PAGES = text(
    "UPDATE messages SET pages_generation = :g, pages_upto = :upto"
    " WHERE id = :pk AND (pages_upto IS NULL OR pages_upto < :upto)")

# --- Upkeep (store/upkeep.py)

# The message whose events have waited longest, once they paused or waited too long.
# Pages count too: a worker killed between the counters and the pages left counters
# current and pages stale (the crash test found it).
UPKEEP_DUE = text(
    "SELECT id FROM messages WHERE last_ingest_at IS NOT NULL AND purged_at IS NULL"
    " AND (pending_since IS NOT NULL OR pages_upto IS NULL OR pages_upto <> next_batch)"
    " AND (last_ingest_at <= :quiet OR pending_since <= :lag)"
    " ORDER BY last_ingest_at LIMIT 1")
# After an upkeep, the events still pending (they came while it ran) wait from now.
UPKEEP_WAIT_AGAIN = text(
    "UPDATE messages SET pending_since = :at WHERE id = :pk AND pending_since < :at")
# A message's small segments, and how many of them are of no part.
SMALL_SEGMENTS = text(
    "SELECT count(*), coalesce(sum(CASE WHEN part IS NULL THEN 1 ELSE 0 END), 0)"
    " FROM activity_segments WHERE message_pk = :pk AND events < :small")
# Counters read by a snapshot that saw `seen` batches: they stop being pending only if
# no batch came since. PostgreSQL rechecks `next_batch` on the row version it waited
# for, so a later append leaves them pending.
STORE_COUNTS = text(
    "UPDATE messages SET stats = :stats, pending_since = CASE"
    " WHEN next_batch = :seen THEN NULL ELSE pending_since END WHERE id = :pk")
# The same, only if still current and pending (an export's tally must not replace
# counters a later read stored).
STORE_CURRENT_COUNTS = text(
    "UPDATE messages SET stats = :stats, pending_since = NULL"
    " WHERE id = :pk AND next_batch = :seen AND pending_since IS NOT NULL")

# Counters that are current, as a snapshot that saw `seen` batches counted them.
CURRENT_STATS = text(
    "SELECT stats FROM messages WHERE id = :pk AND next_batch = :seen"
    " AND pending_since IS NULL AND stats IS NOT NULL")
KEEP_STATS = text(
    "UPDATE messages SET stats = :stats WHERE id = :pk AND next_batch = :seen"
    " AND pending_since IS NULL")

# --- Provider webhooks (ingest/intake.py)

INSERT_REJECTION = text(
    "INSERT INTO webhook_rejections (app_pk, source, reason, message_id, event, digest,"
    " received_at) VALUES (:app_pk, :source, :reason, :message_id, :event, :digest, :at)"
    " ON CONFLICT (app_pk, digest) DO NOTHING")
# A connector's events older than its last :keep (those the group just wrote among them).
TRIM_CONNECTOR_EVENTS = text(
    "DELETE FROM connector_events WHERE app_pk = :app_pk AND source = :source AND id <="
    " (SELECT id FROM connector_events WHERE app_pk = :app_pk AND source = :source"
    " ORDER BY id DESC LIMIT 1 OFFSET :keep)")
# A message a provider's event names that the app has not registered: created on the
# way (a concurrent delivery may have created it first).
CREATE_MESSAGE = text(
    "INSERT INTO messages (message_id, app_pk, name, target_channel, body, created_at)"
    " VALUES (:message_id, :app_pk, :name, :channel, :body, :at)"
    " ON CONFLICT (app_pk, message_id) DO NOTHING")

# --- Checks (operate/check.py)

CHECK_MESSAGES = read(
    "SELECT id, message_id, next_batch, pages_generation FROM messages"
    " WHERE purged_at IS NULL ORDER BY id")
CHECK_SEGMENTS = read(
    "SELECT id, first_batch, last_batch, events FROM activity_segments"
    " WHERE message_pk = :pk ORDER BY id")
CHECK_PAGES = read(
    "SELECT page, rows FROM recipient_pages WHERE message_pk = :pk AND generation = :g"
    " ORDER BY page")
CHECK_JOBS = read(
    "SELECT export_id, state, file_key, bytes, manifest, lease_owner, error FROM jobs"
    " ORDER BY id")
