"""Webhook connections (sealed credentials) and rejected webhook events.

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "connections",
        sa.Column("app_pk", sa.Integer, sa.ForeignKey("apps.id"), primary_key=True),
        sa.Column("source", sa.String(16), primary_key=True),
        sa.Column("secret", sa.Text, nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "webhook_rejections",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("app_pk", sa.Integer, sa.ForeignKey("apps.id"), nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("message_id", sa.String(100), nullable=True),
        sa.Column("event", sa.Text, nullable=False),
        sa.Column("digest", sa.String(64), nullable=False),
        sa.Column("received_at", sa.BigInteger, nullable=False),
    )
    op.create_index("ux_webhook_rejections_digest", "webhook_rejections",
                    ["app_pk", "digest"], unique=True)
    op.create_index("ix_webhook_rejections_app", "webhook_rejections", ["app_pk", "id"])


def downgrade() -> None:
    op.drop_table("webhook_rejections")
    op.drop_table("connections")
