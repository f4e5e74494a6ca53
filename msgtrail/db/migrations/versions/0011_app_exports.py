"""App-level activity exports and completion webhooks.

- An app-level export (`kind` activity) covers any of the app's messages, so a job's
  message is optional; `marks` keeps the batch each message had reached in the
  export's snapshot, which is what its `next_cursor` continues from.
- An app may name a URL to hear when its exports end; each notice is a row of
  `webhook_deliveries`, delivered and retried by the workers.

Revision ID: 0011
Revises: 0010
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.alter_column("message_pk", existing_type=sa.Integer(), nullable=True)
        batch.add_column(sa.Column("marks", sa.Text(), nullable=True))
    op.create_index("ix_jobs_app_created", "jobs", ["app_pk", "kind", "created_at"])
    with op.batch_alter_table("apps") as batch:
        batch.add_column(sa.Column("webhook_url", sa.Text(), nullable=True))
        batch.add_column(sa.Column("webhook_secret", sa.Text(), nullable=True))
    op.create_table(
        "webhook_deliveries",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("event_id", sa.String(40), nullable=False, unique=True),
        sa.Column("job_id", sa.Integer(), sa.ForeignKey("jobs.id"), nullable=False),
        sa.Column("type", sa.String(24), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("next_at", sa.Float(), nullable=False),
        sa.Column("lease_owner", sa.String(100), nullable=True),
        sa.Column("lease_expires_at", sa.Float(), nullable=True),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("delivered_at", sa.Float(), nullable=True),
    )
    op.create_index("ix_webhook_deliveries_due", "webhook_deliveries", ["state", "next_at"])
    op.create_index("ix_webhook_deliveries_job", "webhook_deliveries", ["job_id", "id"])


def downgrade() -> None:
    op.drop_table("webhook_deliveries")
    with op.batch_alter_table("apps") as batch:
        batch.drop_column("webhook_secret")
        batch.drop_column("webhook_url")
    op.drop_index("ix_jobs_app_created", table_name="jobs")
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("marks")
        batch.alter_column("message_pk", existing_type=sa.Integer(), nullable=False)

