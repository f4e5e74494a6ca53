"""The few things done differently on SQLite and PostgreSQL, in one place (their
statements are in `statements`)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, Table, select

from msgtrail.db.statements import ADVISORY_LOCK, POSTGRES


def name(conn: Connection) -> str:
    return conn.dialect.name


def lock_message(conn: Connection, message_pk: int) -> None:
    """Serialize compactions of one message across processes (SQLite's write lock
    already does), until the transaction ends."""
    if name(conn) == POSTGRES:
        conn.execute(ADVISORY_LOCK, {"key": message_pk})


def claim(conn: Connection, table: Table, where: Any, order: Any, values: dict[str, Any]) -> Any:
    """In the caller's transaction, take the first row of `table` matching `where` (by
    `order`) and set `values` on it; its id, or None. On PostgreSQL, rows other workers
    are taking are skipped, not waited for (SQLite's write lock serializes takers)."""
    query = select(table.c.id).where(where).order_by(order).limit(1)
    if name(conn) == POSTGRES:
        query = query.with_for_update(skip_locked=True)
    row_id = conn.execute(query).scalar()
    if row_id is not None:
        conn.execute(table.update().where(table.c.id == row_id).values(**values))
    return row_id
