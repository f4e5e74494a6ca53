"""The activity store and its reader, on both configurations: segments pivoted into
recipients, in order and in chunks, from one snapshot; compaction changes nothing a
reader sees; a reader stopped midway leaves nothing open."""

from __future__ import annotations

import functools
import json
import threading
import time
import uuid

import pytest
from sqlalchemy import text

from msgtrail.channels import EVENT_CODE, EVENTS
from msgtrail.db.engine import make_engine
from msgtrail.store import activity, counters, event_batch, pages, pivot, upkeep
from tests.integration.conftest import InProcess

RECIPIENTS = 500


@pytest.fixture(autouse=True)
def _no_background_pages(monkeypatch: pytest.MonkeyPatch) -> None:
    """The in-process worker builds pages once events pause; these tests build them."""
    monkeypatch.setenv("MSGTRAIL_UPKEEP_QUIET_SECONDS", "3600")


def _pk(api: InProcess, message_id: str) -> int:
    with api.engine.connect() as conn:
        return int(conn.execute(text("SELECT id FROM messages WHERE message_id = :m"),
                                {"m": message_id}).scalar_one())


def _lines(api: InProcess, pk: int, events: list[str] | None = None,
           chunk: int = 7) -> list[tuple[bytes, int]]:
    old, pivot.CHUNK_ROWS = pivot.CHUNK_ROWS, chunk
    try:
        with activity.snapshot(api.engine) as raw:
            return list(pivot.lines(raw, pk, "push", pivot.export_line("push", False),
                                         events or []))
    finally:
        pivot.CHUNK_ROWS = old


def _subs(data: bytes) -> list[str]:
    return [line.split(",", 2)[1] for line in data.decode().splitlines()]


def _seeded(api: InProcess) -> tuple[int, list[str]]:
    subs = [str(uuid.uuid4()) for _ in range(RECIPIENTS)]
    message_id = api.create_message()
    now = int(time.time())
    for i in range(0, RECIPIENTS, 100):  # five batches: five segments
        r = api.send(message_id, [{"subscription_id": s, "event": "sent", "timestamp": now - 60}
                                  for s in subs[i:i + 100]])
        assert r.status_code == 200, r.text
    return _pk(api, message_id), sorted(subs)


def test_lines_come_in_subscription_order_and_chunks(api: InProcess) -> None:
    pk, subs = _seeded(api)
    chunks = _lines(api, pk)
    assert _subs(b"".join(d for d, _ in chunks)) == subs
    assert sum(n for _, n in chunks) == RECIPIENTS and max(n for _, n in chunks) <= 7
    assert _lines(api, pk, ["clicked"]) == []  # a filter that matches nothing


def test_a_reader_sees_one_snapshot(api: InProcess) -> None:
    """Events committed after a read began are not in it, wherever their keys fall."""
    pk, subs = _seeded(api)
    with activity.snapshot(api.engine) as raw:
        chunks = pivot.lines(raw, pk, "push", pivot.export_line("push", False), [])
        first = next(chunks)
        with api.engine.begin() as conn:
            activity.append(conn, pk, event_batch.columns(
                [(0, "ffffffff-ffff-4fff-bfff-ffffffffffff", EVENT_CODE["sent"],
                  int(time.time()), None, None, None, None)]), int(time.time()))
        rest = list(chunks)
    assert _subs(b"".join(d for d, _ in [first, *rest])) == subs
    assert len(_subs(b"".join(d for d, _ in _lines(api, pk)))) == RECIPIENTS + 1


def test_compaction_changes_nothing_a_reader_sees(api: InProcess,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """Many small segments (a webhook's), stored with no part, merge into one per part,
    however many rounds of MAX_MERGED that takes; repeats of a row drop, the earliest
    time and the first known attributes stay."""
    monkeypatch.setattr(activity, "MAX_MERGED", 16)
    message_id = api.create_message()
    sub = str(uuid.uuid4())
    now = int(time.time())
    sends = [
        {"subscription_id": sub, "event": "sent", "timestamp": now - 50},
        {"subscription_id": sub, "event": "sent", "timestamp": now - 50},  # a retry
        {"subscription_id": sub, "event": "delivered", "timestamp": now - 40,
         "external_id": "first"},
        {"subscription_id": sub, "event": "sent", "timestamp": now - 55, "external_id": "later"},
        *[{"subscription_id": str(uuid.uuid4()), "event": "sent", "timestamp": now - 30}
          for _ in range(upkeep.COMPACT_SEGMENTS)],
    ]
    for e in sends:
        assert api.send(message_id, [e]).status_code == 200
    pk = _pk(api, message_id)
    with api.engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM activity_segments WHERE part IS NULL"
                                 " AND message_pk = :pk"), {"pk": pk}).scalar() == len(sends)
    before = b"".join(d for d, _ in _lines(api, pk))
    assert activity.compact(api.engine, pk)
    with api.engine.connect() as conn:
        stored = conn.execute(text(
            "SELECT part, events, data FROM activity_segments WHERE message_pk = :pk"),
            {"pk": pk}).all()
    # One segment per part (first hex digit of the ids), each holding only its part's.
    assert sorted(r.part for r in stored) == sorted({int(e["subscription_id"][0], 16)
                                                     for e in sends})
    for r in stored:
        ids = {s for b in activity.decode(r.data) for s in b.column(0).to_pylist()}
        assert {s[0] >> 4 for s in ids} == {r.part}  # the ids' 16 bytes
    assert sum(r.events for r in stored) == len(sends) - 1
    after = b"".join(d for d, _ in _lines(api, pk))
    assert after == before
    row = next(r for r in api.export(message_id) if r["subscription_id"] == sub)
    assert row["external_user_id"] == "first"
    assert row["sent"] == time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now - 55))
    assert not activity.compact(api.engine, pk)  # one segment: nothing to merge


def test_compaction_holds_a_bounded_number_of_events_at_a_time(
        api: InProcess, monkeypatch: pytest.MonkeyPatch) -> None:
    """However many small segments wait, a merge reads at most MERGE_EVENTS events of
    them (or two segments, whatever their size, so that every round makes progress):
    what compaction holds in memory does not grow with the backlog. Readers see the
    same recipients afterwards."""
    monkeypatch.setattr(activity, "MERGE_EVENTS", 40)
    merges: list[tuple[int, int]] = []  # (events, segments) of each merge
    real = activity._merged

    def counted(raw, message_pk, part):  # type: ignore[no-untyped-def]
        found = real(raw, message_pk, part)
        if found is not None:
            merges.append((found[0].num_rows, len(found[1])))
        return found

    monkeypatch.setattr(activity, "_merged", counted)
    message_id = api.create_message()
    now = int(time.time())
    for _ in range(30):  # groups of 16 (webhooks): segments of no part
        assert api.send(message_id, [
            {"subscription_id": str(uuid.uuid4()), "event": "sent", "timestamp": now - 30}
            for _ in range(16)]).status_code == 200
    pk = _pk(api, message_id)
    before = b"".join(d for d, _ in _lines(api, pk))
    assert activity.compact(api.engine, pk)
    assert merges and all(events <= 40 or segments == 2 for events, segments in merges)
    assert b"".join(d for d, _ in _lines(api, pk)) == before
    with api.engine.connect() as conn:
        assert conn.execute(text("SELECT sum(events), count(*) - count(part)"
                                 " FROM activity_segments WHERE message_pk = :pk"),
                            {"pk": pk}).one() == (480, 0)


def test_the_first_known_value_is_first_recorded_not_first_stored(api: InProcess) -> None:
    """Compaction stores a subscription's earliest event after a later batch's segment
    that it did not merge (one too big to be small): a reader still takes the first
    recorded value, wherever it sits in the store."""
    message_id = api.create_message()
    now = int(time.time())
    sub = "a" + str(uuid.uuid4())[1:]
    neighbours = ["a" + str(uuid.uuid4())[1:] for _ in range(activity.SMALL_SEGMENT)]
    assert api.send(message_id, [{"subscription_id": sub, "event": "sent",
                                  "timestamp": now - 60, "external_id": "first"}]
                    ).status_code == 200
    big = [{"subscription_id": s, "event": "sent", "timestamp": now - 50} for s in neighbours]
    assert api.send(message_id, [*big, {"subscription_id": sub, "event": "delivered",
                                        "timestamp": now - 40, "external_id": "second",
                                        "device_type": "iOS"}]).status_code == 200
    pk = _pk(api, message_id)
    assert activity.compact(api.engine, pk)
    with api.engine.connect() as conn:  # the first batch's event is now stored last
        stored = conn.execute(text("SELECT first_batch FROM activity_segments"
                                   " WHERE message_pk = :pk ORDER BY part, id"),
                              {"pk": pk}).scalars().all()
    assert stored == [2, 1]
    with activity.snapshot(api.engine) as raw:
        [row] = counters.sample(raw, pk, "push", ["delivered"], 10)
    assert (row["subscription_id"], row["external_id"], row["device_type"]) == (
        sub, "first", "iOS")


def test_a_reader_stopped_midway_leaves_nothing_open(api: InProcess) -> None:
    """What a lost lease does: the writer stops after one chunk."""
    pk, _ = _seeded(api)
    engine = make_engine(api.settings.resolved_database_url())  # the worker's is busy
    with activity.snapshot(engine) as raw:
        chunks = pivot.lines(raw, pk, "push", pivot.export_line("push", False), [])
        next(chunks)
        chunks.close()
        assert engine.pool.checkedout() == 1
    assert engine.pool.checkedout() == 0
    engine.dispose()
    assert not [t for t in threading.enumerate() if t.name == "export-reader"]


def test_the_report_reads_timeline_and_audience(api: InProcess) -> None:
    """The dashboard's two reads: recipients per event and time bucket, and the first
    recipients by subscription id, all or those with one event."""
    from msgtrail.web.dashboard import report

    message_id = api.create_message()
    now = int(time.time()) // 3600 * 3600
    subs = sorted(str(uuid.uuid4()) for _ in range(60))
    events = [{"subscription_id": s, "event": "sent", "timestamp": now - 3600,
               "external_id": f"user-{i}"} for i, s in enumerate(subs)]
    events += [{"subscription_id": s, "event": "clicked", "timestamp": now - 1800}
               for s in subs[:3]]
    assert api.send(message_id, events).status_code == 200
    pk = _pk(api, message_id)
    timeline = report.activity_timeline(api.service, _message(api, pk))
    assert sum(timeline.counts["sent"]) == 60 and sum(timeline.counts["clicked"]) == 3
    assert sum(timeline.counts["delivered"]) == 0
    everyone = report.audience(api.service, _message(api, pk), None)
    assert [r["subscription_id"] for r in everyone] == subs[:report.SAMPLE]
    clicked = report.audience(api.service, _message(api, pk), "clicked")
    assert [r["subscription_id"] for r in clicked] == subs[:3]
    assert clicked[0]["clicked"] == now - 1800 and clicked[0]["sent"] == now - 3600
    # The next page starts after the last one shown (keyset), to the end.
    rest = report.audience(api.service, _message(api, pk), None, after=subs[report.SAMPLE - 1])
    assert [r["subscription_id"] for r in rest] == subs[report.SAMPLE:]
    assert report.audience(api.service, _message(api, pk), "clicked", after=subs[0]) == clicked[1:]
    assert report.audience(api.service, _message(api, pk), None, after="not-an-id") == everyone
    # One recipient found by its subscription id, or by its external id.
    assert [r["subscription_id"] for r in report.audience(
        api.service, _message(api, pk), None, find=subs[7])] == [subs[7]]
    assert report.audience(api.service, _message(api, pk), None, find="nobody") == []
    [user] = report.audience(api.service, _message(api, pk), None, find="user-42")
    assert user["subscription_id"] == subs[42] and user["external_id"] == "user-42"
    # The same from the message's pages, once built (they keep the ids as text).
    pages.build_pages(api.engine, pk)
    with activity.snapshot(api.engine) as raw:
        assert pages.current_pages(raw, pk) is not None
    assert report.audience(api.service, _message(api, pk), None, after=subs[report.SAMPLE - 1]
                           ) == rest
    assert report.audience(api.service, _message(api, pk), None, find="user-42") == [user]
    assert report.audience(api.service, _message(api, pk), None, find=subs[7].upper())[0][
        "subscription_id"] == subs[7]


def test_pages_answer_exactly_what_the_pivot_answers_until_an_event_arrives(
        api: InProcess) -> None:
    """Once built, an export reads the pages: the same rows for every filter and for raw
    cells; an event accepted after them makes exports pivot again, and a rebuild
    publishes new pages and deletes the old."""
    message_id = api.create_message()
    now = int(time.time())
    subs = [str(uuid.uuid4()) for _ in range(30)]
    events = [{"subscription_id": s, "event": "sent", "timestamp": now - 60,
               "external_id": "=1+1" if i == 0 else f"u{i}"} for i, s in enumerate(subs)]
    events += [{"subscription_id": s, "event": "clicked", "timestamp": now - 30}
               for s in subs[:4]]
    assert api.send(message_id, events).status_code == 200
    pk = _pk(api, message_id)
    variants = [{}, {"events": "clicked"}, {"csv_raw": "true"}]
    pivoted = [api.export(message_id, **v) for v in variants]
    views = _dashboard_reads(api, pk)
    assert pages.build_pages(api.engine, pk)
    assert _dashboard_reads(api, pk) == views  # now from the pages
    assert not pages.build_pages(api.engine, pk)  # current: nothing to do
    with activity.snapshot(api.engine) as raw:
        assert pages.current_pages(raw, pk) is not None
    assert [api.export(message_id, **v) for v in variants] == pivoted
    assert len(pivoted[1]) == 4
    late = str(uuid.uuid4())
    assert api.send(message_id, [{"subscription_id": late, "event": "sent",
                                  "timestamp": now}]).status_code == 200
    with activity.snapshot(api.engine) as raw:
        assert pages.current_pages(raw, pk) is None
    assert late in {r["subscription_id"] for r in api.export(message_id)}
    assert pages.build_pages(api.engine, pk)
    with api.engine.connect() as conn:
        generations = conn.execute(text(
            "SELECT count(DISTINCT generation), sum(rows) FROM recipient_pages"
            " WHERE message_pk = :pk"), {"pk": pk}).one()
    assert tuple(generations) == (1, 31)


def test_pages_merged_with_newer_events_answer_what_the_pivot_answers(
        api: InProcess, monkeypatch: pytest.MonkeyPatch) -> None:
    """An export of a message whose pages are a few events behind merges those events
    into the pages as it reads them: byte for byte the pivot's lines, for every filter
    and raw cells, whether a newer recipient sorts before, between or after the pages,
    and with an attribute known first in the pages kept over a newer one."""
    monkeypatch.setattr(pages, "PAGE_ROWS", 8)  # several pages
    message_id = api.create_message()
    now = int(time.time())
    subs = sorted(str(uuid.uuid4()) for _ in range(40))
    first = [{"subscription_id": s, "event": "sent", "timestamp": now - 600,
              **({"external_id": f"u{i}"} if i % 2 else {})} for i, s in enumerate(subs)]
    first[4]["external_id"] = "=1+1"  # a raw line of its own, in a page left as it is
    first += [{"subscription_id": s, "event": "clicked", "timestamp": now - 500}
              for s in subs[:3]]
    assert api.send(message_id, first).status_code == 200
    pk = _pk(api, message_id)
    assert pages.build_pages(api.engine, pk)
    with activity.snapshot(api.engine) as raw:  # the last recipient of the first page
        page = next(pages._pages(raw, pk, pages.current_pages(raw, pk) or 0))
        boundary = page.column("subscription_id")[-1].as_py()
    newer = [
        {"subscription_id": "00000000-0000-4000-8000-000000000000", "event": "sent",
         "timestamp": now, "external_id": "=before"},
        {"subscription_id": "ffffffff-ffff-4fff-bfff-ffffffffffff", "event": "clicked",
         "timestamp": now},
        {"subscription_id": str(uuid.uuid4()), "event": "delivered", "timestamp": now},
        {"subscription_id": subs[1], "event": "clicked", "timestamp": now,
         "external_id": "not-the-first", "device_type": "iOS"},  # u1 stays, iOS is new
        {"subscription_id": subs[2], "event": "sent", "timestamp": now - 900,
         "external_id": "+late"},  # earlier time wins; first external_id now known
        {"subscription_id": subs[20], "event": "delivered", "timestamp": now},
        {"subscription_id": boundary, "event": "delivered", "timestamp": now},
    ]
    assert api.send(message_id, newer).status_code == 200
    with monkeypatch.context() as pivot_only:
        pivot_only.setattr(pages, "MERGE_EVENTS", 0)
        views = _dashboard_reads(api, pk)  # from the pivot
        counted = sorted(_counts(api, pk), key=str)
    with activity.snapshot(api.engine) as raw:
        assert pages.current_pages(raw, pk) is None
        assert pages.mergeable_pages(raw, pk) is not None
        for events, raw_cells in (([], False), (["clicked"], False), (["delivered"], False),
                                  ([], True), (["sent", "clicked"], True)):
            merged = list(pages.page_lines(pages.recipient_pages(raw, pk, "push")
                                                or [], events, raw_cells))
            pivoted = list(pivot.lines(
                raw, pk, "push", pivot.export_line("push", raw_cells), events))
            assert b"".join(d for d, _ in merged) == b"".join(d for d, _ in pivoted)
            assert sum(n for _, n in merged) == sum(n for _, n in pivoted)
        # The total is known before the first page: pages' recipients and new ones.
        totals: list[int] = []
        stored = pages.recipient_pages(raw, pk, "push", totals.append)
        assert stored is not None and totals == [] and next(stored) is not None
        assert totals == [43]
        stored.close()
    assert _dashboard_reads(api, pk) == views  # merged as well
    assert sorted(_counts(api, pk), key=str) == counted
    rows = {r["subscription_id"]: r for r in api.export(message_id, csv_raw="true")}
    assert len(rows) == 43
    assert (rows[subs[1]]["external_user_id"], rows[subs[1]]["device_type"]) == ("u1", "iOS")
    assert rows[subs[2]]["external_user_id"] == "+late"
    assert rows["00000000-0000-4000-8000-000000000000"]["external_user_id"] == "=before"
    assert rows[subs[4]]["external_user_id"] == "=1+1"
    with monkeypatch.context() as behind:
        behind.setattr(pages, "MERGE_EVENTS", len(newer) - 1)
        with activity.snapshot(api.engine) as raw:  # too far behind: the pivot reads
            assert pages.mergeable_pages(raw, pk) is None
            assert pages.recipient_pages(raw, pk, "push") is None
    pivoted = api.export(message_id, csv_raw="true")
    with monkeypatch.context() as merging_only:
        merging_only.setattr(pages, "_pivoted_pages", None)  # not called
        assert pages.build_pages(api.engine, pk)  # by merging, then current
    with activity.snapshot(api.engine) as raw:
        generation = pages.current_pages(raw, pk)
        assert generation is not None
        sizes = [page.num_rows for page in pages._pages(raw, pk, generation)]
        totals = []
        pages.recipient_pages(raw, pk, "push", totals.append)
        assert totals == [43]
    assert sizes == [8] * 5 + [3] and api.export(message_id, csv_raw="true") == pivoted
    assert _dashboard_reads(api, pk) == views


def _message(api: InProcess, pk: int):  # type: ignore[no-untyped-def]
    """The message as a view reads it (its counters as kept)."""
    from msgtrail import messages

    with api.engine.connect() as conn:
        return messages.by_pk(conn, pk)


def _dashboard_reads(api: InProcess, pk: int) -> tuple[object, ...]:
    """What the dashboard's report asks of the store, read as current: the timeline and
    the first recipients, all and those who clicked."""
    with activity.snapshot(api.engine) as raw:
        return (counters.timeline(raw, pk, "push"),
                counters.sample(raw, pk, "push", [], 50),
                counters.sample(raw, pk, "push", ["clicked"], 50))


def test_a_page_build_that_died_midway_publishes_nothing(api: InProcess,
                                                         monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """A build killed after writing its pages, before publishing them, leaves them
    unpublished: exports pivot, and the next build deletes them."""
    pk, subs = _seeded(api)
    engine = make_engine(api.settings.resolved_database_url())  # not the worker's
    calls = {"n": 0}
    real = engine.begin

    def dying_begin():  # type: ignore[no-untyped-def]
        calls["n"] += 1
        if calls["n"] == 2:  # after the one page, at publishing
            raise SystemExit("killed")
        return real()

    monkeypatch.setattr(engine, "begin", dying_begin)
    with pytest.raises(SystemExit):
        pages.build_pages(engine, pk)
    monkeypatch.setattr(engine, "begin", real)
    engine.dispose()
    with activity.snapshot(api.engine) as raw:
        assert pages.current_pages(raw, pk) is None
    with api.engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM recipient_pages")).scalar_one() == 1
    assert pages.build_pages(api.engine, pk)
    with api.engine.connect() as conn:
        assert conn.execute(text("SELECT count(*), sum(rows) FROM recipient_pages")
                            ).one() == (1, RECIPIENTS)
    chunks = []
    with activity.snapshot(api.engine) as raw:
        generation = pages.current_pages(raw, pk)
        assert generation is not None
        chunks = list(pages.page_lines(pages._pages(raw, pk, generation), [], False))
    assert _subs(b"".join(d for d, _ in chunks)) == subs


@pytest.mark.parametrize(("pass_events", "ranges", "mixed"), [
    (64, 8, False),  # two of the store's parts per range
    (16, 32, False),  # finer than the parts: each part split into two files
    (1, 256, False),  # the finest: each part split into sixteen
    (64, 8, True),  # segments written before parts: the message split into files
])
def test_many_passes_read_exactly_what_one_pass_reads(
        api: InProcess, monkeypatch: pytest.MonkeyPatch, pass_events: int, ranges: int,
        mixed: bool) -> None:
    """A message read in key-range passes (forced small here: 500 events) gives the
    same lines, counters, timeline and sample as one pass, whether its ranges are
    read from the store's parts or split from its segments."""
    from msgtrail.web.dashboard import report

    pk, subs = _seeded(api)
    one = (b"".join(d for d, _ in _lines(api, pk)), _counts(api, pk), _dashboard_reads(api, pk))
    if mixed:
        with api.engine.begin() as conn:
            conn.execute(text("UPDATE activity_segments SET part = NULL WHERE id IN"
                              " (SELECT min(id) FROM activity_segments WHERE message_pk = :pk)"),
                         {"pk": pk})
    monkeypatch.setattr(pivot, "PASS_EVENTS", pass_events)
    with activity.snapshot(api.engine) as raw, pivot.split(raw, pk) as sources:
        assert len(sources) == ranges
        funcs = {s.func for s in sources if isinstance(s, functools.partial)}
        assert funcs == ({pivot._events} if mixed else {pivot._part_range}
                         if ranges > activity.PARTS else {pivot._part_events})
    many = (b"".join(d for d, _ in _lines(api, pk)), _counts(api, pk), _dashboard_reads(api, pk))
    assert many == one
    assert _subs(many[0]) == subs
    totals: list[int] = []
    with activity.snapshot(api.engine) as raw:
        list(pivot.lines(raw, pk, "push", pivot.export_line("push", False), [],
                              totals.append))
    # Scaled from the ranges read so far, then exact.
    assert len(totals) == ranges and totals[-1] == RECIPIENTS
    assert len(many[2][1]) == report.SAMPLE
    # Pages are cut per range (a range's last page may hold fewer), still in key order.
    page_rows = 16 if ranges <= 32 else 2  # smaller than most ranges
    monkeypatch.setattr(pages, "PAGE_ROWS", page_rows)
    assert pages.build_pages(api.engine, pk)
    with activity.snapshot(api.engine) as raw:
        kept = list(pages.recipient_pages(raw, pk, "push") or [])
        assert b"".join(d for d, _ in pages.page_lines(kept, [], False)) == many[0]
    assert (max(p.num_rows for p in kept) == page_rows
            and len(kept) > -(-RECIPIENTS // page_rows))


def _counts(api: InProcess, pk: int) -> list[tuple[object, ...]]:
    with activity.snapshot(api.engine) as raw:
        return sorted(counters.counts(raw, pk, "push"), key=str)


def _counters(api: InProcess, pk: int) -> tuple[object, dict | None]:  # type: ignore[type-arg]
    with api.engine.connect() as conn:
        pending, stats = conn.execute(text(
            "SELECT pending_since, stats FROM messages WHERE id = :pk"), {"pk": pk}).one()
    return pending, json.loads(stats) if stats else None


def test_an_export_of_every_recipient_leaves_the_counters_current(api: InProcess) -> None:
    """A fresh export of every recipient counts them as its pivot goes by, and stores
    the message's counters from that snapshot (nothing pivots it again to count them),
    exactly as a recount gives them. A filtered export leaves them pending, and a tally
    of an older snapshot never replaces them."""
    message_id = api.create_message()
    now = int(time.time())
    subs = [str(uuid.uuid4()) for _ in range(40)]
    events = [{"subscription_id": s, "event": "sent", "timestamp": now - 60,
               "device_type": "iOS" if i % 3 else "Android"} for i, s in enumerate(subs)]
    events += [{"subscription_id": s, "event": "delivered", "timestamp": now - 50}
               for s in subs[:30]]
    events += [{"subscription_id": s, "event": "failed", "timestamp": now - 50,
                "failure_message": "gone"} for s in subs[30:34]]
    events += [{"subscription_id": s, "event": "clicked", "timestamp": now - 40}
               for s in subs[:5]]
    assert api.send(message_id, events).status_code == 200
    pk = _pk(api, message_id)
    assert _counters(api, pk)[0] is not None  # pending: nothing has counted them yet

    assert len(api.export(message_id, events="clicked")) == 5
    assert _counters(api, pk)[0] is not None  # a filtered export counts only some

    assert len(api.export(message_id)) == 40
    pending, stats = _counters(api, pk)
    with activity.snapshot(api.engine) as raw:
        recount = counters.counts(raw, pk, "push")
    assert pending is None
    assert stats == json.loads(json.dumps(upkeep._stats(recount, "push")))
    assert stats["totals"]["recipients"] == 40 and stats["totals"]["failed"] == 4

    # An event after the export: a tally of the export's older snapshot is refused.
    late = str(uuid.uuid4())
    assert api.send(message_id, [{"subscription_id": late, "event": "sent",
                                  "timestamp": now}]).status_code == 200
    with api.engine.connect() as conn:
        batches = conn.execute(text("SELECT next_batch FROM messages WHERE id = :pk"),
                               {"pk": pk}).scalar_one()
    upkeep.store_counts(api.engine, pk, "push", [("iOS", 1, 0, *[0] * len(EVENTS))], batches - 1,
                        only_current=True)
    assert _counters(api, pk)[1] == stats


def test_readers_of_pending_counters_share_recounts(api: InProcess,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """Eight readers of a message whose events keep coming (a dashboard, clients
    polling) share at most two recounts instead of pivoting eight times, and each reads
    counters that hold every event committed before it asked."""
    pk, subs = _seeded(api)
    pivots: list[float] = []
    real = counters.counts_and_timeline

    def slow_counts(*args, **kwargs):  # the real recount, slowed so that readers overlap
        pivots.append(time.monotonic())
        time.sleep(0.3)
        return real(*args, **kwargs)

    monkeypatch.setattr(counters, "counts_and_timeline", slow_counts)
    with api.engine.connect() as conn:  # events arrived since the counters were computed
        assert conn.execute(text("SELECT pending_since FROM messages WHERE id = :pk"),
                            {"pk": pk}).scalar() is not None
    start = threading.Barrier(8)
    totals: list[int] = []

    def reader() -> None:
        start.wait()
        upkeep.refresh_stats(api.engine, pk)
        with api.engine.connect() as conn:
            stats = json.loads(conn.execute(text("SELECT stats FROM messages WHERE id = :pk"),
                                            {"pk": pk}).scalar_one())
        totals.append(stats["totals"]["sent"])

    threads = [threading.Thread(target=reader) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert totals == [len(subs)] * 8
    assert 1 <= len(pivots) <= 2, pivots


def test_the_recount_keeps_the_chart_and_a_view_does_not_wait_for_the_next(
        api: InProcess) -> None:
    """A recount keeps the timeline beside the counters (a view reads it, instead of
    every recipient); when more events come, the dashboard's read shows the kept
    counters with since when they lag, and the API's read counts the new ones."""
    from msgtrail import apps
    from msgtrail.web.dashboard import report

    message_id = api.create_message()
    now = int(time.time()) // 60 * 60
    subs = [str(uuid.uuid4()) for _ in range(30)]
    assert api.send(message_id, [{"subscription_id": s, "event": "sent", "timestamp": now}
                                 for s in subs]).status_code == 200
    pk = _pk(api, message_id)
    upkeep.refresh_stats(api.engine, pk)
    kept = _message(api, pk)
    assert kept.pending_since is None and kept.stats is not None
    with activity.snapshot(api.engine) as raw:
        fresh = counters.timeline(raw, pk, "push")
    assert kept.stats["timeline"] == json.loads(json.dumps(
        {"bucket": fresh[0], "rows": fresh[1]}))
    assert sum(report.activity_timeline(api.service, kept).counts["sent"]) == 30

    assert api.send(message_id, [{"subscription_id": s, "event": "clicked",
                                  "timestamp": now + 60} for s in subs[:4]]).status_code == 200
    with api.engine.connect() as conn:
        app = apps.get_app(conn, api.app_id)
    lagging = api.service.message(app, message_id, wait=False)
    assert lagging.pending_since is not None
    assert lagging.stats is not None and lagging.stats["totals"]["clicked"] == 0
    assert api.service.message(app, message_id).stats["totals"]["clicked"] == 4  # type: ignore[index]
