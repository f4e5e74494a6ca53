"""The few SQL expressions that differ between SQLite and PostgreSQL, in one place."""

from __future__ import annotations

from sqlalchemy import Connection, text

POSTGRES = "postgresql"
# Readers pivot activity in DuckDB (msgtrail.recipients), with the same CSV expressions.
DUCKDB = "duckdb"


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


def lock_message(conn: Connection, message_pk: int) -> None:
    """Serialize compactions of one message across processes (SQLite's write lock
    already does), until the transaction ends."""
    if name(conn) == POSTGRES:
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": message_pk})
