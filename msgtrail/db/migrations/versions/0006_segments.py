"""Activity as columnar segments: the log and the folded recipients become segments;
recipient pages, derived from them, for exports of messages gone quiet.

Revision ID: 0006
Revises: 0005
"""

import io

import pyarrow as pa
import pyarrow.ipc as ipc
import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

# Frozen as of this revision: event codes in order, the segment schema and rec's layout.
EVENTS = ("sent", "delivered", "clicked", "failed", "unsubscribed", "opened", "bounced",
          "suppressed", "reported_spam", "rejected")
ATTRS = ("onesignal_id", "external_id", "device_type", "failure_message")
SCHEMA = pa.schema([("subscription_id", pa.string()), ("event", pa.int8()), ("ts", pa.int64()),
                    *[(a, pa.string()) for a in ATTRS], ("rec", pa.int64())])
REC_BITS = 24
CHUNK = 100_000


def _segment(rows: list[tuple]) -> bytes:
    columns = list(zip(*rows, strict=True))
    batch = pa.RecordBatch.from_arrays(
        [pa.array(c, t) for c, t in zip(columns, SCHEMA.types, strict=True)], schema=SCHEMA)
    sink = io.BytesIO()
    with ipc.new_stream(sink, SCHEMA, options=ipc.IpcWriteOptions(compression="lz4")) as w:
        w.write_batch(batch)
    return sink.getvalue()


def upgrade() -> None:
    segments = op.create_table(
        "activity_segments",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
        sa.Column("message_pk", sa.Integer, nullable=False),
        sa.Column("first_batch", sa.Integer, nullable=False),
        sa.Column("last_batch", sa.Integer, nullable=False),
        sa.Column("events", sa.Integer, nullable=False),
        sa.Column("data", sa.LargeBinary, nullable=False),
    )
    op.create_index("ix_activity_segments_message", "activity_segments", ["message_pk", "id"])
    if op.get_bind().dialect.name == "postgresql":
        # Segments are Arrow IPC, stored uncompressed on purpose (reads decode them
        # zero-copy): TOAST's pglz would compress each on insert and inflate it on read.
        op.execute("ALTER TABLE activity_segments ALTER COLUMN data SET STORAGE EXTERNAL")
    op.create_table(
        "recipient_pages",
        sa.Column("message_pk", sa.Integer, primary_key=True),
        sa.Column("generation", sa.BigInteger, primary_key=True),
        sa.Column("page", sa.Integer, primary_key=True),
        sa.Column("rows", sa.Integer, nullable=False),
        sa.Column("data", sa.LargeBinary, nullable=False),
    )
    with op.batch_alter_table("messages") as batch:
        batch.add_column(sa.Column("pages_generation", sa.BigInteger, nullable=True))
        batch.add_column(sa.Column("pages_upto", sa.Integer, nullable=True))
    conn = op.get_bind()

    def store(pk: int, first: int, last: int, rows: list[tuple]) -> None:
        conn.execute(segments.insert().values(message_pk=pk, first_batch=first, last_batch=last,
                                              events=len(rows), data=_segment(rows)))

    # Folded recipients: their attributes were already the first known, so every event
    # row carries them with rec 0, before anything still in the log.
    for (pk,) in conn.execute(sa.text("SELECT DISTINCT message_pk FROM recipients")).all():
        rows: list[tuple] = []
        result = conn.execute(sa.text(
            f"SELECT subscription_id, {', '.join(ATTRS)}, {', '.join(EVENTS)} FROM recipients"
            " WHERE message_pk = :pk ORDER BY subscription_id"), {"pk": pk})
        for sub, *values in result:
            attrs, times = values[:len(ATTRS)], values[len(ATTRS):]
            rows += [(sub, code, ts, *attrs, 0) for code, ts in enumerate(times) if ts is not None]
            if len(rows) >= CHUNK:
                store(pk, 0, 0, rows)
                rows = []
        if rows:
            store(pk, 0, 0, rows)
    # The log, batch by batch, as it was accepted.
    log = conn.execute(sa.text(
        f"SELECT message_pk, batch, seq, subscription_id, event, ts, {', '.join(ATTRS)}"
        " FROM activity_log ORDER BY message_pk, batch, seq"))
    current, rows, first = 0, [], 0
    for pk, batch, seq, sub, event, ts, *attrs in log:
        if rows and (current != pk or len(rows) >= CHUNK):
            store(current, first, rows[-1][-1] >> REC_BITS, rows)
            rows = []
        if not rows:
            current, first = pk, batch
        rows.append((sub, event, ts, *attrs, (batch << REC_BITS) | seq))
    if rows:
        store(current, first, rows[-1][-1] >> REC_BITS, rows)
    op.drop_table("activity_log")
    op.execute("DROP TABLE recipients" + (" CASCADE" if conn.dialect.name == "postgresql"
                                          else ""))


def downgrade() -> None:
    raise NotImplementedError("activity segments cannot be turned back into folded rows")
