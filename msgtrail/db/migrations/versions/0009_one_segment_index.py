"""One index on segments: (message_pk, part, id) serves every read by message, so
(message_pk, id) goes. Each segment written maintained both, and a single-event
webhook writes a segment per request: ~20 µs of its ~330 µs in SQLite's write lock.

Revision ID: 0009
Revises: 0008
"""

from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index("ix_activity_segments_message", table_name="activity_segments")


def downgrade() -> None:
    op.create_index("ix_activity_segments_message", "activity_segments", ["message_pk", "id"])
