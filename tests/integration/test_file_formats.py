"""export_events in JSON Lines and Parquet, on both configurations: the same recipients
and values as the CSV (raw cells), typed where the format has types, from the pivot and
from recipient pages alike, each with its manifest."""

from __future__ import annotations

import datetime
import gzip
import hashlib
import io
import json
import time
import uuid
from urllib.parse import urlparse

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from sqlalchemy import text

from msgtrail.store import activity, pages
from tests.integration.conftest import InProcess

EVENT_COLUMNS = ("sent", "delivered", "clicked", "failed", "unsubscribed")
# Values a serializer gets wrong: quotes, backslashes, line breaks, control characters,
# a formula (kept as it is outside CSV), non-ASCII.
ODD = ['say "hi"', "back\\slash", "two\nlines", "tab\there", "bell\x07", "=1+2", "Zoë 😀"]


@pytest.fixture(autouse=True)
def _no_background_pages(monkeypatch: pytest.MonkeyPatch) -> None:
    """The test decides when pages are built."""
    monkeypatch.setenv("MSGTRAIL_UPKEEP_QUIET_SECONDS", "3600")


def _seed(api: InProcess) -> tuple[str, int]:
    message_id = api.create_message()
    now = int(time.time())
    events = []
    for i in range(40):
        sub = str(uuid.uuid4())
        events.append({"subscription_id": sub, "event": "sent", "timestamp": now - 100 + i,
                       "external_id": ODD[i % len(ODD)] if i % 5 else None,
                       "device_type": "Android" if i % 2 else None})
        if i % 3 == 0:
            events.append({"subscription_id": sub, "event": "failed", "timestamp": now - 50,
                           "failure_message": ODD[(i + 1) % len(ODD)]})
    assert api.send(message_id, events).status_code == 200
    with api.engine.connect() as conn:
        pk = conn.execute(text("SELECT id FROM messages WHERE message_id = :m"),
                          {"m": message_id}).scalar_one()
    return message_id, int(pk)


def _expected(api: InProcess, message_id: str) -> list[dict[str, str | None]]:
    """The CSV's rows with raw cells, an empty cell as None."""
    return [{k: (v or None) for k, v in row.items()}
            for row in api.export(message_id, csv_raw="true")]


def _iso(value: datetime.datetime | None) -> str | None:
    return None if value is None else value.strftime("%Y-%m-%dT%H:%M:%SZ")


@pytest.mark.parametrize("from_pages", [False, True])
def test_jsonl_and_parquet_hold_what_the_csv_holds(api: InProcess, tmp_path,
                                                   from_pages: bool) -> None:
    message_id, pk = _seed(api)
    if from_pages:
        assert pages.build_pages(api.engine, pk)
    with activity.snapshot(api.engine) as raw:
        assert (pages.current_pages(raw, pk) is not None) == from_pages
    expected = _expected(api, message_id)
    assert len(expected) == 40

    data, status = api.export_file(message_id, format="jsonl")
    assert status["manifest"]["format"] == "jsonl"
    assert status["manifest"]["compression"] == "gzip"
    assert status["manifest"]["sha256"] == hashlib.sha256(data).hexdigest()
    assert status["manifest"]["rows"] == 40
    objects = [json.loads(line) for line in gzip.decompress(data).decode().splitlines()]
    assert objects == expected

    data, status = api.export_file(message_id, format="parquet")
    assert urlparse(status["url"]).path.endswith(".parquet")
    assert (status["manifest"]["format"], status["manifest"]["compression"]) == (
        "parquet", "none")
    assert status["manifest"]["sha256"] == hashlib.sha256(data).hexdigest()
    table = pq.read_table(io.BytesIO(data))
    assert table.schema.field("sent").type == pa.timestamp("ms", tz="UTC")
    assert table.schema.field("external_user_id").type == pa.string()
    rows = [{k: _iso(v) if k in EVENT_COLUMNS else v for k, v in row.items()}
            for row in table.to_pylist()]
    assert rows == expected
    path = tmp_path / "x.parquet"
    path.write_bytes(data)
    assert duckdb.sql(f"SELECT count(*), count(failed) FROM read_parquet('{path}')"
                      ).fetchall() == [(40, 14)]

    # Only recipients with a failure, in both formats.
    data, status = api.export_file(message_id, format="parquet", events="failed")
    assert pq.read_table(io.BytesIO(data)).num_rows == status["manifest"]["rows"] == 14
    assert status["manifest"]["filter"]["events"] == ["failed"]


def test_an_empty_message_gives_a_valid_empty_parquet_file(api: InProcess) -> None:
    message_id = api.create_message()
    data, status = api.export_file(message_id, format="parquet")
    table = pq.read_table(io.BytesIO(data))
    assert table.num_rows == 0 and "sent" in table.schema.names
    assert status["manifest"]["rows"] == 0


def test_an_unknown_format_is_refused_and_queues_nothing(api: InProcess) -> None:
    message_id = api.create_message()
    r = api.client.post(f"/notifications/{message_id}/export_events",
                        params={"app_id": api.app_id, "format": "xlsx"})
    assert r.status_code == 400
    assert r.json() == {"errors": ["format: must be one of csv, jsonl, parquet"]}
    r = api.client.post(f"/notifications/{message_id}/export_events",
                        params={"app_id": api.app_id}, json={"format": 3})
    assert r.status_code == 400
    with api.engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM jobs")).scalar() == 0
