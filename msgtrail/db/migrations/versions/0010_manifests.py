"""Each export's file has a manifest (JSON, set when the job becomes ready): its rows,
bytes and SHA-256 as served, its columns and its filter.

Revision ID: 0010
Revises: 0009
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("jobs", sa.Column("manifest", sa.Text(), nullable=True))


def downgrade() -> None:
    op.drop_column("jobs", "manifest")
