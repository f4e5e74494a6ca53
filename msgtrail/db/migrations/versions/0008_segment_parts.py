"""Segments by key range: each ingest batch is stored as up to sixteen segments, one per
first hex digit of its events' subscription ids (`activity.PARTS`), so that a reader
takes a sixteenth of a message's recipients at a time without splitting its events
first. Segments written before hold every range (`part` NULL); readers split those.

Revision ID: 0008
Revises: 0007
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("activity_segments", sa.Column("part", sa.SmallInteger(), nullable=True))
    op.create_index("ix_activity_segments_part", "activity_segments",
                    ["message_pk", "part", "id"])


def downgrade() -> None:
    op.drop_index("ix_activity_segments_part", table_name="activity_segments")
    op.drop_column("activity_segments", "part")
