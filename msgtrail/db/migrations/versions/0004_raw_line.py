"""Formula cells neutralised in stored CSV lines; the raw line kept where it differs.

Revision ID: 0004
Revises: 0003
"""

import csv

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

# Frozen as of this revision: the positions of the text cells in every channel's line
# (external_user_id, device_type, failure_message) and what starts a formula.
TEXT_CELLS = (0, 2, 9)
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _cell(value: str) -> str:
    if any(c in value for c in ',"\r\n'):
        return '"' + value.replace('"', '""') + '"'
    return value


def _neutralised(line: str) -> str:
    cells = next(csv.reader([line]))
    for i in TEXT_CELLS:
        if cells[i][:1] in FORMULA_STARTS:
            cells[i] = "'" + cells[i]
    return ",".join(_cell(c) for c in cells)


def upgrade() -> None:
    op.add_column("recipients", sa.Column("raw_line", sa.Text, nullable=True))
    conn = op.get_bind()
    char = "chr" if conn.dialect.name == "postgresql" else "char"
    starts = f"IN ('=', '+', '-', '@', {char}(9), {char}(13))"
    rows = conn.execute(sa.text(
        "SELECT message_pk, subscription_id, line FROM recipients WHERE line IS NOT NULL AND ("
        + " OR ".join(f"substr({c}, 1, 1) {starts}"
                      for c in ("external_id", "device_type", "failure_message")) + ")"))
    update = sa.text("UPDATE recipients SET raw_line = line, line = :line"
                     " WHERE message_pk = :pk AND subscription_id = :sub")
    for pk, sub, line in rows.all():
        conn.execute(update, {"line": _neutralised(line), "pk": pk, "sub": sub})


def downgrade() -> None:
    op.execute("UPDATE recipients SET line = raw_line WHERE raw_line IS NOT NULL")
    op.drop_column("recipients", "raw_line")
