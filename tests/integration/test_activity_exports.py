"""App-level activity exports, on both configurations: one row per event of every
message of the app, each field of the request, every format, the manifest against the
file, and a chain of cursor exports holding each event exactly once."""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import json
import time
import uuid
from datetime import UTC, datetime
from urllib.parse import urlparse

import pyarrow as pa
import pyarrow.parquet as pq
from sqlalchemy import text

from msgtrail.store import pages
from tests.integration.conftest import InProcess

COLUMNS = ["message_id", "channel", "subscription_id", "event", "timestamp",
           "onesignal_id", "external_id", "device_type", "failure_message"]


def _iso(ts: int) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _rows(data: bytes) -> list[dict[str, str | None]]:
    reader = csv.DictReader(io.StringIO(gzip.decompress(data).decode(), newline=""))
    assert reader.fieldnames == COLUMNS
    return [{k: (v or None) for k, v in row.items()} for row in reader]


def _key(row: dict[str, str | None]) -> tuple[str | None, ...]:
    return (row["message_id"], row["subscription_id"], row["event"])


def test_one_row_per_event_with_first_known_attributes(api: InProcess, tmp_path) -> None:
    push, email = api.create_message(), api.create_message("email")
    now = int(time.time())
    a, b, c = (str(uuid.UUID(int=i << 120 | 7)) for i in (1, 2, 3))
    osid = str(uuid.uuid4())
    assert api.send(push, [
        {"subscription_id": a, "event": "sent", "timestamp": now - 300},
        {"subscription_id": b, "event": "sent", "timestamp": now - 300,
         "external_id": 'say "hi", twice', "device_type": "iOS"},
        {"subscription_id": b, "event": "failed", "timestamp": now - 200,
         "failure_message": "=1+2\nbad token"},
    ]).status_code == 200
    # A later request: a repeat of a's sent with an earlier time, and a's attributes.
    assert api.send(push, [
        {"subscription_id": a, "event": "sent", "timestamp": now - 400,
         "onesignal_id": osid, "external_id": "u-a"},
        {"subscription_id": a, "event": "clicked", "timestamp": now - 100},
    ]).status_code == 200
    assert api.send(email, [
        {"subscription_id": c, "event": "opened", "timestamp": now - 50,
         "device_type": "Email"}]).status_code == 200

    data, status = api.activity_export()
    rows = _rows(data)
    assert rows == [
        {"message_id": push, "channel": "push", "subscription_id": a, "event": "sent",
         "timestamp": _iso(now - 400), "onesignal_id": osid, "external_id": "u-a",
         "device_type": None, "failure_message": None},
        {"message_id": push, "channel": "push", "subscription_id": a, "event": "clicked",
         "timestamp": _iso(now - 100), "onesignal_id": osid, "external_id": "u-a",
         "device_type": None, "failure_message": None},
        {"message_id": push, "channel": "push", "subscription_id": b, "event": "sent",
         "timestamp": _iso(now - 300), "onesignal_id": None,
         "external_id": 'say "hi", twice', "device_type": "iOS", "failure_message": None},
        {"message_id": push, "channel": "push", "subscription_id": b, "event": "failed",
         "timestamp": _iso(now - 200), "onesignal_id": None,
         "external_id": 'say "hi", twice', "device_type": "iOS",
         "failure_message": "=1+2\nbad token"},
        {"message_id": email, "channel": "email", "subscription_id": c, "event": "opened",
         "timestamp": _iso(now - 50), "onesignal_id": None, "external_id": None,
         "device_type": "Email", "failure_message": None},
    ]
    manifest = status["manifest"]
    assert manifest["rows"] == 5 and manifest["bytes"] == len(data)
    assert manifest["sha256"] == hashlib.sha256(data).hexdigest()
    assert manifest["filter"] == {"message_ids": None, "events": None, "since": None,
                                  "until": None}
    assert (manifest["cursor"], manifest["next_cursor"]) == (None, status["export_id"])
    assert status["next_cursor"] == status["export_id"]
    assert [c["name"] for c in manifest["columns"]] == COLUMNS
    assert api.fetch(status["manifest_url"]) == json.dumps(manifest).encode()

    # The same rows as JSON Lines, uncompressed, and as typed Parquet.
    data, status = api.activity_export(format="jsonl", compression="none")
    assert urlparse(status["file_url"]).path.endswith(".jsonl")
    assert status["manifest"]["sha256"] == hashlib.sha256(data).hexdigest()
    assert [json.loads(line) for line in data.decode().splitlines()] == rows
    data, status = api.activity_export(format="parquet")
    table = pq.read_table(io.BytesIO(data))
    assert table.schema.field("timestamp").type == pa.timestamp("ms", tz="UTC")
    assert [{**r, "timestamp": _iso(int(r["timestamp"].timestamp()))}
            for r in table.to_pylist()] == rows
    assert status["manifest"]["rows"] == table.num_rows == 5


def test_filters(api: InProcess) -> None:
    push, other = api.create_message(), api.create_message()
    now = int(time.time())
    subs = [str(uuid.uuid4()) for _ in range(6)]
    assert api.send(push, [{"subscription_id": s, "event": e, "timestamp": now - 600 + 100 * i}
                           for i, s in enumerate(subs) for e in ("sent", "clicked")]
                    ).status_code == 200
    assert api.send(other, [{"subscription_id": subs[0], "event": "sent",
                             "timestamp": now}]).status_code == 200

    data, status = api.activity_export(message_ids=[push], events="clicked",
                                       since=now - 400, until=_iso(now - 200))
    assert [(r["subscription_id"], r["event"]) for r in _rows(data)] == sorted(
        [(subs[2], "clicked"), (subs[3], "clicked")])
    assert status["manifest"]["filter"] == {
        "message_ids": [push], "events": ["clicked"], "since": _iso(now - 400),
        "until": _iso(now - 200)}
    data, _ = api.activity_export(message_ids=[other])
    assert [_key(r) for r in _rows(data)] == [(other, subs[0], "sent")]
    # An event no push message has: an empty file with its header.
    data, status = api.activity_export(events=["opened"])
    assert _rows(data) == [] and status["manifest"]["rows"] == 0


def test_a_cursor_chain_holds_every_event_once(api: InProcess) -> None:
    push = api.create_message()
    now = int(time.time())
    first = [str(uuid.uuid4()) for _ in range(30)]
    assert api.send(push, [{"subscription_id": s, "event": "sent", "timestamp": now - 900}
                           for s in first]).status_code == 200
    data, status = api.activity_export()
    seen = [_key(r) for r in _rows(data)]
    assert len(seen) == 30

    # Then: repeats of recorded events (not again), late clicks with old times, new
    # recipients, and a new message.
    later = api.create_message("sms")
    fresh = str(uuid.uuid4())
    assert api.send(push, [
        *({"subscription_id": s, "event": "sent", "timestamp": now - 950} for s in first[:5]),
        *({"subscription_id": s, "event": "clicked", "timestamp": now - 899}
          for s in first[:3]),
        {"subscription_id": fresh, "event": "sent", "timestamp": now}]).status_code == 200
    assert api.send(later, [{"subscription_id": fresh, "event": "delivered",
                             "timestamp": now}]).status_code == 200
    data, status2 = api.activity_export(cursor=status["next_cursor"])
    assert status2["manifest"]["cursor"] == status["export_id"]
    new = [_key(r) for r in _rows(data)]
    assert sorted(new) == sorted([*((push, s, "clicked") for s in first[:3]),
                                  (push, fresh, "sent"), (later, fresh, "delivered")])
    # Nothing since: an empty export, whose cursor carries on.
    data, status3 = api.activity_export(cursor=status2["next_cursor"])
    assert _rows(data) == []
    assert api.send(later, [{"subscription_id": first[0], "event": "sent",
                             "timestamp": now}]).status_code == 200
    data, _ = api.activity_export(cursor=status3["next_cursor"])
    last = [_key(r) for r in _rows(data)]
    assert last == [(later, first[0], "sent")]
    # The chain's union is the whole export, each event once.
    data, _ = api.activity_export()
    everything = [_key(r) for r in _rows(data)]
    assert sorted(seen + new + last) == sorted(everything)
    assert len(set(everything)) == len(everything)


def test_bad_requests_are_refused_and_queue_nothing(api: InProcess) -> None:
    push = api.create_message()
    url = f"/apps/{api.app_id}/activity_exports"
    cases = [
        ({"format": "xlsx"}, "format: must be one of csv, jsonl, parquet"),
        ({"compression": "zstd"}, "compression: must be one of gzip, none"),
        ({"format": "parquet", "compression": "gzip"}, "compression: a Parquet file"),
        ({"sinse": 5}, "unknown field(s) 'sinse'"),
        ({"since": "yesterday"}, "since: 'yesterday' is neither unix seconds nor ISO 8601"),
        ({"since": 20, "until": 10}, "until: must be after since"),
        ({"since": True}, "since: True is neither"),
        ({"events": ["sent", "seen"]}, "events: 'seen' not among"),
        ({"message_ids": []}, "message_ids: a list of 1 to 1000 message ids"),
        ({"message_ids": ["nope"]}, "message_ids[]: 'nope' is not a valid UUID"),
        ({"message_ids": [push, str(uuid.uuid4())]}, "message_ids: no message"),
        ({"cursor": str(uuid.uuid4())}, "cursor: "),
        ({"cursor": 7}, "cursor: 7 is not the next_cursor"),
    ]
    for body, error in cases:
        r = api.client.post(url, json=body)
        assert r.status_code == 400, (body, r.text)
        assert r.json()["errors"][0].startswith(error), (body, r.json())
    assert api.client.post(url, content=b"[1]").status_code == 400
    # A per-message export's id is no cursor either.
    _, status = api.export_file(push)
    r = api.client.post(url, json={"cursor": status["export_id"]})
    assert r.status_code == 400
    with api.engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM jobs WHERE kind = 'activity'")
                            ).scalar() == 0
    # Another app's id, an unknown export.
    assert api.client.post(f"/apps/{uuid.uuid4()}/activity_exports").status_code == 404
    assert api.client.get(f"{url}/{uuid.uuid4()}").status_code == 404


def test_exports_are_listed_newest_first(api: InProcess) -> None:
    api.create_message()
    ids = [api.activity_export(format=f)[1]["export_id"] for f in ("csv", "jsonl", "csv")]
    url = f"/apps/{api.app_id}/activity_exports"
    page = api.client.get(url, params={"limit": 2}).json()
    assert page["total_count"] == 3 and page["limit"] == 2
    assert [e["export_id"] for e in page["exports"]] == ids[::-1][:2]
    page = api.client.get(url, params={"limit": 2, "offset": 2}).json()
    assert [e["export_id"] for e in page["exports"]] == ids[:1]
    assert page["exports"][0]["next_cursor"] == ids[0]
    r = api.client.get(url, params={"limit": 0})
    assert r.status_code == 400 and "errors" in r.json()


def test_pages_and_the_pivot_give_the_same_rows(api: InProcess) -> None:
    """A message whose recipient pages are current is read from them, any other is
    pivoted: the same rows either way, in every format, odd values included."""
    api.settings.upkeep_quiet_seconds = 3600  # the test builds the pages
    message_id = api.create_message("email")
    now = int(time.time())
    odd = ['say "hi"', "a,b", "two\nlines", "=1+2", "Zoë 😀", None]
    events = []
    for i in range(60):
        sub = str(uuid.uuid4())
        events.append({"subscription_id": sub, "event": "sent", "timestamp": now - 500 + i,
                       "external_id": odd[i % 6], "device_type": odd[(i + 1) % 6]})
        if i % 4 == 0:
            events.append({"subscription_id": sub, "event": "bounced", "timestamp": now - 9,
                           "failure_message": odd[(i + 2) % 6]})
        if i % 3 == 0:
            events.append({"subscription_id": sub, "event": "opened", "timestamp": now - 5})
    assert api.send(message_id, events).status_code == 200
    exports = {}
    for source in ("pivot", "pages"):
        if source == "pages":
            with api.engine.connect() as conn:
                pk = conn.execute(text("SELECT id FROM messages WHERE message_id = :m"),
                                  {"m": message_id}).scalar_one()
            assert pages.build_pages(api.engine, pk)
        exports[source] = [api.activity_export(format=f, compression="none")[0]
                           for f in ("csv", "jsonl", "parquet")]
    assert exports["pivot"] == exports["pages"]
    rows = list(csv.DictReader(io.StringIO(exports["pages"][0].decode(), newline="")))
    assert len(rows) == 60 + 15 + 20
    assert {r["external_id"] for r in rows} == {v or "" for v in odd}
    assert {r["failure_message"] for r in rows if r["event"] != "bounced"} == {""}
