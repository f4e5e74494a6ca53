"""The last events each connector received, with their outcome, for its page.

Revision ID: 0014
Revises: 0013
"""

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "connector_events",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
        sa.Column("app_pk", sa.Integer, sa.ForeignKey("apps.id"), nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("received_at", sa.BigInteger, nullable=False),
        sa.Column("event", sa.String(32), nullable=True),
        sa.Column("message_id", sa.String(100), nullable=True),
        sa.Column("subscription_id", sa.String(100), nullable=True),
        sa.Column("outcome", sa.Text, nullable=False),
    )
    op.create_index("ix_connector_events_source", "connector_events",
                    ["app_pk", "source", "id"])


def downgrade() -> None:
    op.drop_table("connector_events")
