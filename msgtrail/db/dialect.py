"""The few SQL expressions that differ between SQLite and PostgreSQL, in one place."""

from __future__ import annotations

from sqlalchemy import Connection, text

POSTGRES = "postgresql"
# Readers pivot activity in DuckDB (msgtrail.recipients), with the same CSV expressions.
DUCKDB = "duckdb"

# PostgreSQL keeps recipients in one partition per day of the message's creation, so
# that retention drops whole partitions; SQLite keeps one table.
PARTITION_SECONDS = 86_400


def name(conn: Connection) -> str:
    return conn.dialect.name


def iso_utc(value: str, dialect: str) -> str:
    """Unix seconds as `2026-11-23T10:00:00Z`, or '' for NULL."""
    if dialect == DUCKDB:
        return f"coalesce(strftime(epoch_ms({value} * 1000), '%Y-%m-%dT%H:%M:%SZ'), '')"
    if dialect == POSTGRES:
        return (f"coalesce(to_char(to_timestamp({value}) AT TIME ZONE 'UTC', "
                "'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), '')")
    return f"coalesce(strftime('%Y-%m-%dT%H:%M:%SZ', {value}, 'unixepoch'), '')"


def needs_csv_quotes(value: str, dialect: str) -> str:
    """True when a CSV field holds a comma, a quote or a line break."""
    if dialect == DUCKDB:
        return f"regexp_matches({value}, '[\",\\r\\n]')"
    if dialect == POSTGRES:
        return f"{value} ~ '[\",\\r\\n]'"
    return f"{value} GLOB '*[\",' || char(10) || char(13) || ']*'"


def formula_start(value: str, dialect: str) -> str:
    """True when a text value begins like a spreadsheet formula: with = + - @, a tab or
    a carriage return (OWASP, "CSV Injection")."""
    char = "char" if dialect == "sqlite" else "chr"
    return f"substr({value}, 1, 1) IN ('=', '+', '-', '@', {char}(9), {char}(13))"


def recipients_key(dialect: str) -> str:
    """The unique key a fold's upsert conflicts on (the partition key is part of it
    on PostgreSQL)."""
    return ("message_pk, subscription_id, msg_day" if dialect == POSTGRES
            else "message_pk, subscription_id")


def lock_message(conn: Connection, message_pk: int) -> None:
    """Serialize folds of one message across processes (SQLite's write lock already
    does), until the transaction ends."""
    if name(conn) == POSTGRES:
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": message_pk})


def partition(day: int) -> str:
    return f"recipients_d{day}"


def ensure_partition(conn: Connection, day: int) -> None:
    """Create the day's recipients partition on PostgreSQL if it is missing."""
    if name(conn) != POSTGRES:
        return
    exists = conn.execute(text("SELECT to_regclass(:t)"), {"t": partition(day)}).scalar()
    if exists:
        return
    # Another process may create it at the same moment: a savepoint absorbs that.
    try:
        with conn.begin_nested():
            conn.execute(text(f"CREATE TABLE IF NOT EXISTS {partition(day)} PARTITION OF "
                              f"recipients FOR VALUES FROM ({day}) TO ({day + 1})"))
    except Exception:
        if not conn.execute(text("SELECT to_regclass(:t)"), {"t": partition(day)}).scalar():
            raise


def partitions(conn: Connection) -> list[int]:
    """Days that have a recipients partition (PostgreSQL)."""
    rows = conn.execute(text(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
        " JOIN pg_class p ON p.oid = i.inhparent WHERE p.relname = 'recipients'")).scalars()
    return sorted(int(r.removeprefix("recipients_d")) for r in rows)
