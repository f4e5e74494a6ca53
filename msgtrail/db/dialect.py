"""The few SQL expressions that differ between SQLite and PostgreSQL, in one place."""

from __future__ import annotations

from sqlalchemy import Connection, text

POSTGRES = "postgresql"


def name(conn: Connection) -> str:
    return conn.dialect.name


def lock_message(conn: Connection, message_pk: int) -> None:
    """Serialize compactions of one message across processes (SQLite's write lock
    already does), until the transaction ends."""
    if name(conn) == POSTGRES:
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": message_pk})
