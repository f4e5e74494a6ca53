"""Accounts, apps, keys, messages and activity.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

# The event columns as they were when this revision was written. A migration is a
# frozen copy: later changes to msgtrail.channels must come with a revision of their own.
EVENTS = ("sent", "delivered", "clicked", "failed", "unsubscribed", "opened", "bounced",
          "suppressed", "reported_spam", "rejected")


def upgrade() -> None:
    op.create_table(
        "accounts",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(200), nullable=False, unique=True),
        sa.Column("created_at", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "apps",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("app_id", sa.String(36), nullable=False, unique=True),
        sa.Column("account_id", sa.Integer, sa.ForeignKey("accounts.id"), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("history_enabled", sa.Boolean, nullable=False, server_default="1"),
        sa.Column("created_at", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_apps_account_id", "apps", ["account_id"])
    op.create_table(
        "api_keys",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("app_pk", sa.Integer, sa.ForeignKey("apps.id"), nullable=False),
        sa.Column("key_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("key_prefix", sa.String(16), nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("revoked_at", sa.BigInteger, nullable=True),
    )
    op.create_index("ix_api_keys_app_pk", "api_keys", ["app_pk"])
    op.create_table(
        "messages",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("message_id", sa.String(36), nullable=False, unique=True),
        sa.Column("app_pk", sa.Integer, sa.ForeignKey("apps.id"), nullable=False),
        sa.Column("name", sa.String(500), nullable=True),
        sa.Column("target_channel", sa.String(8), nullable=False),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("stats", sa.Text, nullable=True),
        sa.Column("last_ingest_at", sa.BigInteger, nullable=True),
        sa.Column("pending_since", sa.BigInteger, nullable=True),
        # The last ingest batch number handed out: incremented under the row's lock,
        # so appends from any number of processes never share a number.
        sa.Column("next_batch", sa.Integer, nullable=False, server_default="0"),
    )
    op.create_index("ix_messages_pending", "messages", ["pending_since"])
    op.create_index("ix_messages_app_created", "messages", ["app_pk", "created_at"])
    op.create_table(
        "activity_log",
        sa.Column("message_pk", sa.Integer, primary_key=True),
        sa.Column("batch", sa.Integer, primary_key=True),
        sa.Column("seq", sa.Integer, primary_key=True),
        sa.Column("subscription_id", sa.String(36), nullable=False),
        sa.Column("event", sa.SmallInteger, nullable=False),
        sa.Column("ts", sa.BigInteger, nullable=False),
        sa.Column("onesignal_id", sa.String(36), nullable=True),
        sa.Column("external_id", sa.Text, nullable=True),
        sa.Column("device_type", sa.String(32), nullable=True),
        sa.Column("failure_message", sa.Text, nullable=True),
        sqlite_with_rowid=False,
    )
    columns: list[sa.Column] = [
        sa.Column("message_pk", sa.Integer, primary_key=True),
        sa.Column("subscription_id", sa.String(36), primary_key=True),
        # The day the message was created (unix seconds // 86400): the partition key.
        sa.Column("msg_day", sa.Integer, nullable=False),
        sa.Column("onesignal_id", sa.String(36), nullable=True),
        sa.Column("external_id", sa.Text, nullable=True),
        sa.Column("device_type", sa.String(32), nullable=True),
        sa.Column("failure_message", sa.Text, nullable=True),
        *[sa.Column(name, sa.BigInteger, nullable=True) for name in EVENTS],
        sa.Column("line", sa.Text, nullable=True),
    ]
    if op.get_bind().dialect.name == "postgresql":
        # Partitioned by day, so that retention drops whole partitions; the key leads
        # with the message, so one message's rows are read in key order and the table
        # can be distributed by message (Citus: distribute by message_pk).
        columns[2] = sa.Column("msg_day", sa.Integer, primary_key=True)
        op.create_table("recipients", *columns, postgresql_partition_by="RANGE (msg_day)")
    else:
        op.create_table("recipients", *columns, sqlite_with_rowid=False)


def downgrade() -> None:
    for table in ("recipients", "activity_log", "messages", "api_keys", "apps", "accounts"):
        op.drop_table(table)
