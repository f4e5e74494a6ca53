"""Tables, as SQLAlchemy Core metadata; the Alembic migrations create the same.

Activity is kept as columnar segments (`activity_segments`, see `msgtrail.store.activity`):
appended once, never updated, so that ingestion never pays for random writes into a
B-tree keyed by random subscription ids.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    SmallInteger,
    String,
    Table,
    Text,
    text,
)

metadata = MetaData()

accounts = Table(
    "accounts",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(200), nullable=False, unique=True),
    Column("created_at", BigInteger, nullable=False),
)

apps = Table(
    "apps",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("app_id", String(36), nullable=False, unique=True),
    Column("account_id", Integer, ForeignKey("accounts.id"), nullable=False, index=True),
    Column("name", String(200), nullable=False),
    Column("history_enabled", Boolean, nullable=False, server_default="1"),
    Column("created_at", BigInteger, nullable=False),
    # Where msgtrail POSTs when an export of the app ends, and the signing secret
    # (sealed by msgtrail.vault); see msgtrail.webhook_delivery.
    Column("webhook_url", Text, nullable=True),
    Column("webhook_secret", Text, nullable=True),
)

api_keys = Table(
    "api_keys",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("app_pk", Integer, ForeignKey("apps.id"), nullable=False, index=True),
    # SHA-256 of the key: keys are 256-bit random tokens, so a fast hash is enough.
    Column("key_hash", String(64), nullable=False, unique=True),
    Column("key_prefix", String(16), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("revoked_at", BigInteger, nullable=True),
)

messages = Table(
    "messages",
    metadata,
    Column("id", Integer, primary_key=True),
    # Unique within its app (ux_messages_app_message): another app may hold the same id.
    Column("message_id", String(36), nullable=False),
    Column("app_pk", Integer, ForeignKey("apps.id"), nullable=False),
    Column("name", String(500), nullable=True),
    Column("target_channel", String(8), nullable=False),
    # The create body as sent, JSON: msgtrail records messages, it does not deliver them.
    Column("body", Text, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    # Delivery counters as JSON, recomputed after events arrive (upkeep.refresh_stats).
    Column("stats", Text, nullable=True),
    # When events last arrived, and since when the counters have not counted some.
    Column("last_ingest_at", BigInteger, nullable=True),
    Column("pending_since", BigInteger, nullable=True),
    # The last ingest batch number handed out (see activity.append).
    Column("next_batch", Integer, nullable=False, server_default="0"),
    # The published generation of the message's recipient_pages, and the last batch
    # they hold (see recipients.build_pages).
    Column("pages_generation", BigInteger, nullable=True),
    Column("pages_upto", Integer, nullable=True),
    # Set once the activity retention window has passed and the activity was deleted.
    Column("purged_at", BigInteger, nullable=True),
    Index("ix_messages_app_created", "app_pk", "created_at"),
    Index("ix_messages_pending", "pending_since"),
    Index("ux_messages_app_message", "app_pk", "message_id", unique=True),
)

# A signed-in dashboard session: its cookie carries a random token, of which only the
# SHA-256 is kept; deleting the row (sign-out, the key rotated or revoked) ends it.
dashboard_sessions = Table(
    "dashboard_sessions",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("app_pk", Integer, ForeignKey("apps.id"), nullable=False),
    # The key it signed in with: the session lasts no longer than that key.
    Column("key_hash", String(64), nullable=False),
    Column("csrf", String(64), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("expires_at", BigInteger, nullable=False),
    Index("ix_dashboard_sessions_key", "key_hash"),
    Index("ix_dashboard_sessions_expires", "expires_at"),
)

# A message's events, one segment (an Arrow IPC stream, see msgtrail.store.activity) per
# accepted batch, or per merge of small ones; read in id order, never updated.
activity_segments = Table(
    "activity_segments",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True),
    Column("message_pk", Integer, nullable=False),
    # The message's ingest batches the segment holds (see activity.append).
    Column("first_batch", Integer, nullable=False),
    Column("last_batch", Integer, nullable=False),
    Column("events", Integer, nullable=False),
    Column("data", LargeBinary, nullable=False),
    # The first hex digit of every subscription id in the segment (activity.PARTS);
    # NULL: any (segments written before parts).
    Column("part", SmallInteger, nullable=True),
    Index("ix_activity_segments_part", "message_pk", "part", "id"),
)

# A message's recipients, pivoted, as sorted pages of CSV lines (Arrow IPC): derived
# from activity_segments, so that exports of messages gone quiet need no pivot.
recipient_pages = Table(
    "recipient_pages",
    metadata,
    Column("message_pk", Integer, primary_key=True),
    Column("generation", BigInteger, primary_key=True),
    Column("page", Integer, primary_key=True),
    Column("rows", Integer, nullable=False),
    Column("data", LargeBinary, nullable=False),
)

# Active states: at most one job of an account may be in one of them at a time.
ACTIVE_STATES = ("queued", "running")

jobs = Table(
    "jobs",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("export_id", String(36), nullable=False, unique=True),
    Column("kind", String(16), nullable=False),  # export | history | activity
    Column("account_id", Integer, ForeignKey("accounts.id"), nullable=False),
    Column("app_pk", Integer, ForeignKey("apps.id"), nullable=False),
    # None for an app-level export (activity), which may cover any of its messages.
    Column("message_pk", Integer, ForeignKey("messages.id"), nullable=True),
    # What to write (JSON): the events filter, format, and an activity export's filter.
    Column("params", Text, nullable=False),
    Column("state", String(16), nullable=False),
    Column("file_key", String(300), nullable=False, unique=True),
    # The URL handed out, for the email and the status endpoint.
    Column("url", Text, nullable=False),
    Column("total_rows", BigInteger, nullable=True),
    Column("rows_written", BigInteger, nullable=False, server_default="0"),
    Column("bytes", BigInteger, nullable=True),
    # The ready file's manifest (JSON): rows, bytes, SHA-256 as served, columns, filter.
    Column("manifest", Text, nullable=True),
    # An activity export's snapshot (JSON): the last batch of each of the app's messages
    # it saw; an export given its cursor writes only later batches' events.
    Column("marks", Text, nullable=True),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("lease_owner", String(100), nullable=True),
    Column("lease_expires_at", Float, nullable=True),
    Column("error", Text, nullable=True),
    Column("email", String(320), nullable=True),
    Column("email_state", String(16), nullable=True),
    Column("email_attempts", Integer, nullable=False, server_default="0"),
    Column("email_error", Text, nullable=True),
    # When a failed email is tried again.
    Column("email_next_at", Float, nullable=True),
    Column("created_at", Float, nullable=False),
    Column("started_at", Float, nullable=True),
    Column("finished_at", Float, nullable=True),
    Column("expires_at", Float, nullable=True),
    Index("ix_jobs_state", "state", "created_at"),
    Index("ix_jobs_app_created", "app_pk", "kind", "created_at"),
    # The database itself enforces one export at a time per account, whatever the
    # number of API processes racing to start one.
    Index("ux_jobs_account_active", "account_id", unique=True,
          sqlite_where=text("state IN ('queued', 'running')"),
          postgresql_where=text("state IN ('queued', 'running')")),
)

# When periodic work is next due: one row per task, moved forward by the worker that
# takes its turn, so that retention runs once per interval whatever the worker count.
schedules = Table(
    "schedules",
    metadata,
    Column("task", String(32), primary_key=True),
    Column("next_at", Float, nullable=False),
)

# A webhook source enabled for an app, with its credential sealed by msgtrail.vault.
connections = Table(
    "connections",
    metadata,
    Column("app_pk", Integer, ForeignKey("apps.id"), primary_key=True),
    Column("source", String(16), primary_key=True),
    Column("secret", Text, nullable=False),
    Column("created_at", BigInteger, nullable=False),
)

# Webhook events msgtrail could not attribute to a message and recipient: kept, with
# why, instead of dropped. `digest` (the provider's event id, or the event itself)
# makes a provider's retry of the same event land once.
webhook_rejections = Table(
    "webhook_rejections",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("app_pk", Integer, ForeignKey("apps.id"), nullable=False),
    Column("source", String(16), nullable=False),
    Column("reason", Text, nullable=False),
    Column("message_id", String(100), nullable=True),
    Column("event", Text, nullable=False),
    Column("digest", String(64), nullable=False),
    Column("received_at", BigInteger, nullable=False),
    Index("ux_webhook_rejections_digest", "app_pk", "digest", unique=True),
    Index("ix_webhook_rejections_app", "app_pk", "id"),
)

# The last events each connector of an app received (at most intake.RECENT_EVENTS
# each), with their outcome: "recorded", a rejection's reason, or a test event's.
connector_events = Table(
    "connector_events",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True),
    Column("app_pk", Integer, ForeignKey("apps.id"), nullable=False),
    Column("source", String(16), nullable=False),
    Column("received_at", BigInteger, nullable=False),
    Column("event", String(32), nullable=True),
    Column("message_id", String(100), nullable=True),
    Column("subscription_id", String(100), nullable=True),
    Column("outcome", Text, nullable=False),
    Index("ix_connector_events_source", "app_pk", "source", "id"),
)

# Completion notices to an app's webhook URL: one row per (job, ready|failed|expired),
# its body fixed when created so that every retry sends the same event id and bytes.
webhook_deliveries = Table(
    "webhook_deliveries",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("event_id", String(40), nullable=False, unique=True),
    Column("job_id", Integer, ForeignKey("jobs.id"), nullable=False),
    Column("type", String(24), nullable=False),
    # The URL when the notice was made; it goes to the app's URL at each attempt.
    Column("url", Text, nullable=False),
    Column("body", Text, nullable=False),
    # pending -> sending -> delivered, or pending again (next_at) until given up: failed.
    Column("state", String(16), nullable=False),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("error", Text, nullable=True),
    Column("next_at", Float, nullable=False),
    Column("lease_owner", String(100), nullable=True),
    Column("lease_expires_at", Float, nullable=True),
    Column("created_at", Float, nullable=False),
    Column("delivered_at", Float, nullable=True),
    Index("ix_webhook_deliveries_due", "state", "next_at"),
    Index("ix_webhook_deliveries_job", "job_id", "id"),
)

# Who did what to an app (msgtrail.audit): keys, connectors, settings, exports asked
# for, files downloaded, dashboard sign-ins. Kept `audit_retention_days`.
audit_events = Table(
    "audit_events",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True),
    Column("app_pk", Integer, ForeignKey("apps.id"), nullable=False),
    Column("at", Float, nullable=False),
    Column("action", String(32), nullable=False),
    Column("via", String(16), nullable=False),  # api | dashboard | cli | download
    Column("key_prefix", String(16), nullable=True),
    Column("remote_addr", String(64), nullable=True),
    Column("detail", Text, nullable=True),  # JSON: ids and names, never a secret
    Index("ix_audit_events_app", "app_pk", "id"),
    Index("ix_audit_events_at", "at"),
)
