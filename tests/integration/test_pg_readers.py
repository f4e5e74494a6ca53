"""Parallel PostgreSQL readers of one export: same bytes as one reader, one snapshot."""

from __future__ import annotations

import itertools
import threading
import uuid

import pytest
from sqlalchemy import text

from msgtrail import activity
from msgtrail.db.engine import make_engine
from msgtrail.export_pipeline import _postgres_chunks, key_ranges
from msgtrail.testing.backends import PG_ADMIN
from msgtrail.testing.service import start_server, stop_server
from tests.helpers import create_message, event, send_ndjson

RECIPIENTS = 500


def test_key_ranges_cover_the_uuid_space_in_order() -> None:
    ranges = key_ranges(7)
    assert len(ranges) == 7 and ranges[0][0] == "" and ranges[-1][1] is None
    assert all(a[1] == b[0] for a, b in itertools.pairwise(ranges))
    cuts = [upto for _, upto in ranges[:-1]]
    assert cuts == sorted(cuts) and all(str(uuid.UUID(c)) == c for c in cuts)
    assert key_ranges(1) == [("", None)]


@pytest.fixture
def pg_message(tmp_path):  # type: ignore[no-untyped-def]
    """A push message with RECIPIENTS folded recipients, on a throwaway PostgreSQL
    database (files in a local directory); yields (engine, message_pk, sorted subs)."""
    import psycopg

    database = f"msgtrail_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {database}")
    url = f"postgresql://postgres@127.0.0.1:5432/{database}"
    srv = start_server(tmp_path, "--workers", "0", env={"MSGTRAIL_DATABASE_URL": url})
    engine = make_engine(url)
    try:
        creds = srv.create_app()
        subs = sorted(str(uuid.uuid4()) for _ in range(RECIPIENTS))
        with srv.client(creds) as client:
            message_id = create_message(client, creds)
            send_ndjson(client, creds, message_id, [event(s) for s in subs])
        with engine.connect() as conn:
            pk = conn.execute(text("SELECT id FROM messages WHERE message_id = :m"),
                              {"m": message_id}).scalar_one()
        activity.fold_message(engine, pk)
        yield engine, pk, subs
    finally:
        engine.dispose()
        stop_server(srv)
        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {database} WITH (FORCE)")


def _subs(data: bytes) -> list[str]:
    return [line.split(",", 2)[1] for line in data.decode().splitlines()]


def test_readers_write_the_same_bytes_as_one_reader(pg_message) -> None:  # type: ignore[no-untyped-def]
    engine, pk, subs = pg_message
    one = list(_postgres_chunks(engine, pk, "line", "", RECIPIENTS, readers=1, chunk_rows=7))
    three = list(_postgres_chunks(engine, pk, "line", "", RECIPIENTS, readers=3, chunk_rows=7))
    assert b"".join(d for d, _ in three) == b"".join(d for d, _ in one)
    assert _subs(b"".join(d for d, _ in three)) == subs
    assert sum(n for _, n in three) == RECIPIENTS and max(n for _, n in three) <= 7
    # A filter that matches nothing yields nothing, with any number of readers.
    assert list(_postgres_chunks(engine, pk, "line", "AND clicked IS NOT NULL",
                                 RECIPIENTS, readers=3, chunk_rows=7)) == []


def test_readers_share_one_snapshot(pg_message) -> None:  # type: ignore[no-untyped-def]
    """A recipient that commits after the export began, in a range no reader has read
    yet, is in none of its chunks."""
    engine, pk, subs = pg_message
    chunks = _postgres_chunks(engine, pk, "line", "", RECIPIENTS, readers=2, chunk_rows=50)
    first = next(chunks)
    late = "ffffffff-ffff-4fff-bfff-ffffffffffff"  # the last key: read last
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO recipients (message_pk, msg_day, subscription_id, line)"
                          " SELECT message_pk, msg_day, CAST(:s AS text), replace(line, subscription_id, CAST(:s AS text))"
                          " FROM recipients"
                          " WHERE message_pk = :pk LIMIT 1"), {"s": late, "pk": pk})
    rest = list(chunks)
    assert _subs(b"".join(d for d, _ in [first, *rest])) == subs
    assert _subs(b"".join(d for d, _ in _postgres_chunks(
        engine, pk, "line", "", RECIPIENTS, readers=2, chunk_rows=50)))[-1] == late


def test_an_export_stopped_midway_leaves_no_reader_or_connection(pg_message) -> None:  # type: ignore[no-untyped-def]
    """What a lost lease does: the writer stops after one chunk."""
    engine, pk, _ = pg_message
    chunks = _postgres_chunks(engine, pk, "line", "", RECIPIENTS, readers=3, chunk_rows=7)
    next(chunks)
    assert engine.pool.checkedout() == 3
    chunks.close()
    assert engine.pool.checkedout() == 0
    assert not [t for t in threading.enumerate() if t.name == "export-reader"]


def test_a_busy_worker_process_keeps_connections_for_every_export_and_lease(pg_message) -> None:  # type: ignore[no-untyped-def]
    """`msgtrail worker --concurrency 9`, every worker exporting with 2 readers: each
    still gets its lease heartbeat's connection, at once, and no reader waits."""
    _, pk, subs = pg_message
    workers = 9
    engine = make_engine(pg_message[0].url.render_as_string(hide_password=False),
                         workers=workers, export_readers=2)
    engine.pool._timeout = 5  # a starved pool fails in 5 s instead of 30
    exports = [_postgres_chunks(engine, pk, "line", "", RECIPIENTS, readers=2, chunk_rows=7)
               for _ in range(workers)]
    try:
        firsts = [next(chunks) for chunks in exports]  # every export's readers are open
        assert engine.pool.checkedout() == 2 * workers
        heartbeats = [engine.connect() for _ in range(workers)]
        assert engine.pool.checkedout() == 3 * workers
        for conn in heartbeats:
            conn.close()
        written = [b"".join(d for d, _ in [first, *chunks])
                   for first, chunks in zip(firsts, exports, strict=True)]
        assert all(_subs(data) == subs for data in written)
    finally:
        for chunks in exports:
            chunks.close()
        engine.dispose()
