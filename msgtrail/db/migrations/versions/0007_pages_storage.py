"""Recipient pages are stored as they are: already LZ4-compressed Arrow IPC, which
TOAST's pglz tried to compress again on every insert.

Revision ID: 0007
Revises: 0006
"""

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE recipient_pages ALTER COLUMN data SET STORAGE EXTERNAL")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE recipient_pages ALTER COLUMN data SET STORAGE EXTENDED")
