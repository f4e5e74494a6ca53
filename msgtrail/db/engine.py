"""Database engines and migrations, for SQLite (embedded default) and PostgreSQL."""

from __future__ import annotations

import functools
import logging
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Engine, create_engine, event, inspect, text

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS = Path(__file__).parent / "migrations"
# The newest migration: a command need not start Alembic to learn the database is at
# it (tests/unit/test_migrations_head.py keeps it equal to the scripts' head).
HEAD = "0014"
log = logging.getLogger("msgtrail.db.engine")


# Connections for API requests and short tasks (compactions, claims), with as many again
# opened on demand under load.
BASE_CONNECTIONS = 8


def make_engine(url: str, workers: int = 0) -> Engine:
    """An engine with the connection settings msgtrail relies on.

    Each of the process's `workers` may hold, for a whole export, its reader plus one
    connection for its lease heartbeat and one of its own; the pool keeps room for all
    of them beside the API's, so that a busy process never starves a heartbeat (which
    would lose leases)."""
    pool_size = BASE_CONNECTIONS + workers * 3
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 60, "check_same_thread": False},
                               pool_size=pool_size, max_overflow=BASE_CONNECTIONS)
        _configure_sqlite(engine)
        return engine
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://"):]
    return create_engine(url, pool_pre_ping=True, pool_size=pool_size,
                         max_overflow=BASE_CONNECTIONS)


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn, _record):  # type: ignore[no-untyped-def]
        # Autocommit at the driver; transactions are begun explicitly below, so that a
        # writer takes SQLite's write lock up front instead of failing to upgrade later.
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA busy_timeout=60000")
        # Every pooled connection keeps its own page cache and temp B-trees: large
        # caches and in-memory sorts multiplied `serve`'s peak; small ones and sorts
        # spilling to temp files hold it, and reads measured no slower (blobs are read
        # once each; docs/benchmarks.md, "Figures behind the code").
        cur.execute("PRAGMA cache_size=-2048")  # 2 MiB
        cur.execute("PRAGMA temp_store=FILE")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn):  # type: ignore[no-untyped-def]
        conn.exec_driver_sql("BEGIN IMMEDIATE")


def _config() -> Config:
    # Alembic is imported only when a migration runs or is inspected: a command that
    # finds the database at HEAD starts without it.
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Apply the Alembic migrations to the database behind `engine`: nothing to do (the
    usual case, asked by every command) costs one query, not Alembic's start."""
    before = _current(engine)
    if revision == "head" and before == {HEAD}:
        return
    from alembic import command

    config = _config()
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, revision)
    log.info("database migrated from %s to %s", ", ".join(sorted(before)) or "nothing",
             HEAD if revision == "head" else revision)


def _current(engine: Engine) -> set[str]:
    """The migrations the database is at (none for a new one)."""
    with engine.connect() as conn:
        found = inspect(conn).has_table("alembic_version")
        current = set(conn.execute(text("SELECT version_num FROM alembic_version"))
                      .scalars()) if found else set()
        conn.rollback()
    return current


@functools.cache
def _heads() -> frozenset[str]:
    """This code's migration heads: read from the scripts once per process."""
    from alembic.script import ScriptDirectory

    return frozenset(ScriptDirectory.from_config(_config()).get_heads())


def migrations_behind(engine: Engine) -> str | None:
    """Why the database is not at this code's migrations (`msgtrail db upgrade` brings
    it there), or None when it is."""
    heads = _heads()
    # Read, not through alembic's MigrationContext: that logs two lines at INFO each
    # time, and readiness is asked every few seconds.
    current = _current(engine)
    if current == heads:
        return None
    return (f"database at migration {', '.join(sorted(current)) or 'none'}, this code at "
            f"{', '.join(sorted(heads))}")
