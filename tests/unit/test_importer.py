"""msgtrail.ingest.importer: a OneSignal audience-activity file becomes one message's
events, all of it or none, and importing it twice changes nothing."""

from __future__ import annotations

import gzip
import json
import uuid
from pathlib import Path

import pytest
from sqlalchemy import func, select

from msgtrail.db.schema import activity_segments, messages
from msgtrail.errors import BadRequest
from msgtrail.ingest.importer import import_file
from msgtrail.store import upkeep
from tests.unit.conftest import Store

NOW = 1_800_000_000
HEADER = ("external_user_id,subscription_id,device_type,sent,delivered,clicked,onesignal_id,"
          "failed,unsubscribed,failure_message")


def _file(tmp_path: Path, lines: list[str], name: str = "audience.csv.gz") -> Path:
    path = tmp_path / name
    path.write_bytes(gzip.compress(("\n".join([HEADER, *lines]) + "\n").encode()))
    return path


def _line(sub: str, clicked: str = "") -> str:
    return f"ext,{sub},iOS,2026-11-20 10:00:00 UTC,2026-11-20 10:00:05 UTC,{clicked},,,,"


def _totals(store: Store, message_pk: int) -> dict[str, int]:
    upkeep.refresh_stats(store.engine, message_pk)
    with store.engine.connect() as conn:
        stats = conn.execute(select(messages.c.stats).where(
            messages.c.id == message_pk)).scalar_one()
    totals = json.loads(stats)["totals"]
    return {"recipients": totals["recipients"], "clicked": totals["clicked"]}


def test_a_file_becomes_one_messages_events_once(store: Store, tmp_path: Path) -> None:
    subs = [str(uuid.uuid4()) for _ in range(3)]
    path = _file(tmp_path, [_line(subs[0], "2026-11-20 10:01:00 UTC"), _line(subs[1]),
                            _line(subs[2])])
    first = import_file(store.engine, store.app, path, None, NOW)
    assert (first.created, first.recipients, first.events) == (True, 3, 7)
    second = import_file(store.engine, store.app, path, None, NOW)
    assert second.message_id == first.message_id and not second.created
    with store.engine.connect() as conn:
        pk = conn.execute(select(messages.c.id).where(
            messages.c.message_id == first.message_id)).scalar_one()
    assert _totals(store, pk) == {"recipients": 3, "clicked": 1}


def test_a_bad_file_is_refused_whole(store: Store, tmp_path: Path) -> None:
    path = _file(tmp_path, [_line(str(uuid.uuid4())), _line("not-a-uuid"),
                            _line(str(uuid.uuid4()), "yesterday")])
    with pytest.raises(BadRequest) as refused:
        import_file(store.engine, store.app, path, None, NOW)
    assert refused.value.messages == [
        "line 3: subscription_id 'not-a-uuid' is not a UUID",
        "line 4: clicked 'yesterday' is not a time"]
    with store.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(activity_segments)
                            ).scalar_one() == 0
        assert conn.execute(select(func.count()).select_from(messages)).scalar_one() == 1


def test_the_message_id_comes_from_the_name_or_the_flag(store: Store, tmp_path: Path) -> None:
    named = str(uuid.uuid4())
    path = _file(tmp_path, [_line(str(uuid.uuid4()))],
                 f"events_audience-activity-{named}-email-2026-11-20T10-00-00Z.csv.gz")
    done = import_file(store.engine, store.app, path, None, NOW)
    assert (done.message_id, done.channel) == (named, "email")
    into = import_file(store.engine, store.app, path, store.message.message_id, NOW)
    assert into.message_id == store.message.message_id and not into.created
    with pytest.raises(BadRequest):
        import_file(store.engine, store.app, path, "nope", NOW)
