"""When periodic work (retention) is next due, shared by every worker.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    table = op.create_table(
        "schedules",
        sa.Column("task", sa.String(32), primary_key=True),
        sa.Column("next_at", sa.Float, nullable=False),
    )
    op.bulk_insert(table, [{"task": "purge", "next_at": 0.0}])


def downgrade() -> None:
    op.drop_table("schedules")
