"""Dashboard sessions kept server-side, and message ids unique per app.

- A signed-in dashboard session is a row of `dashboard_sessions`, looked up by the
  SHA-256 of the random token its cookie carries: signing out, rotating or revoking
  the key deletes the row, and the cookie opens nothing after that.
- A message id was unique across all apps, so an app could tell that an id existed in
  another app (its OneSignal stream or import could not create it). It is now unique
  within its app only.

Revision ID: 0012
Revises: 0011
"""

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def _messages(per_app: bool) -> sa.Table:
    """The messages table as 0011 left it, its message id unique per app or globally
    (SQLite cannot drop the unnamed constraint: batch mode copies the table)."""
    return sa.Table(
        "messages", sa.MetaData(),
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("message_id", sa.String(36), nullable=False, unique=not per_app),
        sa.Column("app_pk", sa.Integer, sa.ForeignKey("apps.id"), nullable=False),
        sa.Column("name", sa.String(500), nullable=True),
        sa.Column("target_channel", sa.String(8), nullable=False),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("stats", sa.Text, nullable=True),
        sa.Column("last_ingest_at", sa.BigInteger, nullable=True),
        sa.Column("pending_since", sa.BigInteger, nullable=True),
        sa.Column("next_batch", sa.Integer, nullable=False, server_default="0"),
        sa.Column("purged_at", sa.BigInteger, nullable=True),
        sa.Column("pages_generation", sa.BigInteger, nullable=True),
        sa.Column("pages_upto", sa.Integer, nullable=True),
        sa.Index("ix_messages_pending", "pending_since"),
        sa.Index("ix_messages_app_created", "app_pk", "created_at"),
    )


def _recreate(per_app: bool) -> None:
    # Other tables reference messages: their keys are checked at commit, once the
    # copy has taken the old table's name.
    op.execute("PRAGMA defer_foreign_keys=ON")
    with op.batch_alter_table("messages", recreate="always",
                              copy_from=_messages(per_app)):
        pass


def upgrade() -> None:
    op.create_table(
        "dashboard_sessions",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("app_pk", sa.Integer(), sa.ForeignKey("apps.id"), nullable=False),
        sa.Column("key_hash", sa.String(64), nullable=False),
        sa.Column("csrf", sa.String(64), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("expires_at", sa.BigInteger(), nullable=False),
    )
    op.create_index("ix_dashboard_sessions_key", "dashboard_sessions", ["key_hash"])
    op.create_index("ix_dashboard_sessions_expires", "dashboard_sessions", ["expires_at"])
    if op.get_bind().dialect.name == "sqlite":
        _recreate(per_app=True)
    else:
        op.drop_constraint("messages_message_id_key", "messages", type_="unique")
    op.create_index("ux_messages_app_message", "messages", ["app_pk", "message_id"],
                    unique=True)


def downgrade() -> None:
    op.drop_index("ux_messages_app_message", table_name="messages")
    if op.get_bind().dialect.name == "sqlite":
        _recreate(per_app=False)
    else:
        op.create_unique_constraint("messages_message_id_key", "messages", ["message_id"])
    op.drop_table("dashboard_sessions")
