"""Export jobs, and purge marks on messages.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("messages") as batch:
        batch.add_column(sa.Column("purged_at", sa.BigInteger, nullable=True))
    op.create_table(
        "jobs",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("export_id", sa.String(36), nullable=False, unique=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("account_id", sa.Integer, sa.ForeignKey("accounts.id"), nullable=False),
        sa.Column("app_pk", sa.Integer, sa.ForeignKey("apps.id"), nullable=False),
        sa.Column("message_pk", sa.Integer, sa.ForeignKey("messages.id"), nullable=False),
        sa.Column("params", sa.Text, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("file_key", sa.String(300), nullable=False, unique=True),
        # The URL handed out, for the email and the status endpoint.
        sa.Column("url", sa.Text, nullable=False),
        sa.Column("total_rows", sa.BigInteger, nullable=True),
        sa.Column("rows_written", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("bytes", sa.BigInteger, nullable=True),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("lease_owner", sa.String(100), nullable=True),
        sa.Column("lease_expires_at", sa.Float, nullable=True),
        sa.Column("error", sa.Text, nullable=True),
        sa.Column("email", sa.String(320), nullable=True),
        sa.Column("email_state", sa.String(16), nullable=True),
        sa.Column("email_attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("email_error", sa.Text, nullable=True),
        sa.Column("email_next_at", sa.Float, nullable=True),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("started_at", sa.Float, nullable=True),
        sa.Column("finished_at", sa.Float, nullable=True),
        sa.Column("expires_at", sa.Float, nullable=True),
    )
    op.create_index("ix_jobs_state", "jobs", ["state", "created_at"])
    active = sa.text("state IN ('queued', 'running')")
    op.create_index("ux_jobs_account_active", "jobs", ["account_id"], unique=True,
                    sqlite_where=active, postgresql_where=active)


def downgrade() -> None:
    op.drop_table("jobs")
    with op.batch_alter_table("messages") as batch:
        batch.drop_column("purged_at")
