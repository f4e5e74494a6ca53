"""The report page of a big message never waits for a count of its recipients: a view
shows what the store keeps (counters, chart, pages) and marks what is still being
counted, for the page's script to fetch again. "Big" is lowered to a few events here."""

from __future__ import annotations

import threading
import time
import uuid
from typing import Any

import pytest
from sqlalchemy import select

from msgtrail.db.schema import messages
from msgtrail.store import activity, counters, kept, pages, upkeep
from tests.helpers import wait_for
from tests.integration.conftest import InProcess

PENDING = "data-pending"


def _no_pivot(*_args: object, **_kwargs: object) -> None:
    raise AssertionError("a view pivoted the message's events")


def test_a_big_message_is_counted_in_the_background_and_shown_from_its_pages(
        api: InProcess, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(kept, "VIEW_PIVOT_EVENTS", 10)
    # Only a view's counting thread keeps the message up here, not the worker's upkeep,
    # and only as far as each step of the test lets it (a thread still running from
    # one step finds the next step's gates).
    monkeypatch.setattr(upkeep, "compact_next", lambda *_a, **_k: False)
    allowed = {"count": False, "pages": False}
    count, keep = upkeep.refresh_stats, upkeep.keep_up

    def gated(step: str, real: Any, idle: Any) -> Any:
        def run(*args: Any, **kwargs: Any) -> Any:
            assert threading.current_thread().name.startswith("counting"), "a view counted"
            return real(*args, **kwargs) if allowed[step] else idle
        return run

    monkeypatch.setattr(upkeep, "refresh_stats", gated("count", count, None))
    monkeypatch.setattr(upkeep, "keep_up", gated("pages", keep, False))
    # Signed in first: the messages list it shows would ask for the count too.
    api.sign_in()
    message_id = api.create_message()
    now = int(time.time())
    subs = sorted(str(uuid.uuid4()) for _ in range(30))
    assert api.send(message_id, [{"subscription_id": s, "event": "sent", "timestamp": now,
                                  "external_id": f"user-{i}"} for i, s in enumerate(subs)]
                    ).status_code == 200
    path = f"/messages/{message_id}"

    # The first view neither counts nor pivots: it says so, marked pending.
    first = api.client.get(path)
    assert first.status_code == 200
    assert "Counting this message's recipients" in first.text and PENDING in first.text
    assert 'class="funnel"' not in first.text and "user-0" not in first.text
    assert "The chart is drawn once" in first.text
    assert "Recipients are listed here once" in first.text
    listed = api.client.get("/messages")
    assert "Counting…" in listed.text and PENDING in listed.text

    # The counting thread (asked again by the next view) counts it: the counters, the
    # chart and the first recipients show; a filtered list waits for pages.
    allowed["count"] = True
    counted = wait_for(lambda: (r := api.client.get(path)).status_code == 200
                       and 'class="funnel"' in r.text and r)
    assert "<strong>30</strong>" in counted.text and "<svg" in counted.text
    assert "user-0" in counted.text and subs[0] in counted.text
    assert PENDING not in counted.text
    assert "Counting…" not in api.client.get("/messages").text
    filtered = api.client.get(path, params={"activity": "sent"})
    assert "Recipients are listed here once" in filtered.text and PENDING in filtered.text

    # Then it builds the message's pages: any list shows, nothing pending.
    allowed["pages"] = True
    shown = wait_for(lambda: (r := api.client.get(path, params={"activity": "sent"}))
                     .status_code == 200 and PENDING not in r.text and r)
    assert "user-0" in shown.text and subs[0] in shown.text
    with activity.snapshot(api.engine) as raw:
        assert pages.current_pages(raw, _pk(api, message_id)) is not None

    # More events: the page shows the counters and pages as kept, says they lag, and
    # pivots nothing (the recount and the pages' rebuild are the upkeep's).
    late = "00000000-0000-4000-8000-000000000000"  # sorts first
    assert api.send(message_id, [{"subscription_id": late, "event": "sent",
                                  "timestamp": now}]).status_code == 200
    monkeypatch.setattr(counters, "passes", _no_pivot)
    monkeypatch.setattr(pages, "_merged_pages", _no_pivot)
    monkeypatch.setattr(upkeep, "refresh_stats", _no_pivot)
    lagging = api.client.get(path)
    assert lagging.status_code == 200 and "Events are still arriving" in lagging.text
    assert "<strong>30</strong>" in lagging.text and late not in lagging.text
    assert subs[0] in lagging.text and PENDING not in lagging.text
    found = api.client.get(path, params={"find": "user-7"})
    assert subs[7] in found.text


def _pk(api: InProcess, message_id: str) -> int:
    with api.engine.connect() as conn:
        return int(conn.execute(select(messages.c.id).where(
            messages.c.message_id == message_id)).scalar_one())


def test_a_small_message_is_counted_by_its_first_view(api: InProcess) -> None:
    message_id = api.create_message()
    now = int(time.time())
    assert api.send(message_id, [{"subscription_id": str(uuid.uuid4()), "event": "sent",
                                  "timestamp": now, "external_id": "only-one"}]
                    ).status_code == 200
    api.sign_in()
    page = api.client.get(f"/messages/{message_id}")
    assert 'class="funnel"' in page.text and "<strong>1</strong>" in page.text
    assert "only-one" in page.text and PENDING not in page.text
