"""Parsing and validation of event batches, without a server."""

import json
import uuid

import pytest

from msgtrail.channels import EVENT_CODE
from msgtrail.errors import BadRequest, PayloadTooLarge
from msgtrail.store import event_batch
from msgtrail.store.event_batch import ParsedBatch, parse_batch

NOW = 1_790_000_000


def body(*events: dict) -> bytes:
    return json.dumps({"events": list(events)}).encode()


def rows(batch: ParsedBatch) -> list[tuple]:
    """The batch as (position, subscription, event, ts, onesignal_id, external_id,
    device_type, failure_message) tuples."""
    subs, *fields, rec = batch.events.to_pydict().values()
    ids = [str(uuid.UUID(bytes=s)) for s in subs]  # stored as their 16 bytes
    return [(r, *f) for r, *f in zip(rec, ids, *fields, strict=True)]


def ev(**kw: object) -> dict:
    return {"subscription_id": str(uuid.uuid4()), "event": "sent", "timestamp": NOW - 10, **kw}


def test_valid_batch_becomes_rows() -> None:
    sub, osid = uuid.uuid4(), uuid.uuid4()
    batch = parse_batch(body(ev(subscription_id=str(sub), onesignal_id=str(osid),
                                external_id="u-1", device_type="iOS")),
                        False, "push", NOW, 100)
    assert rows(batch) == [(0, str(sub), EVENT_CODE["sent"], NOW - 10, str(osid), "u-1", "iOS",
                           None)]


def test_ids_are_stored_in_canonical_lower_case() -> None:
    sub = uuid.uuid4()
    batch = parse_batch(body(ev(subscription_id=str(sub).upper())), False, "push", NOW, 10)
    assert rows(batch)[0][1] == str(sub)
    with pytest.raises(BadRequest) as err:
        parse_batch(body(ev(), ev(onesignal_id=str(sub)[:-1] + "g")), False, "push", NOW, 10)
    assert err.value.messages == [f"events[1].onesignal_id: '{str(sub)[:-1]}g' is not a UUID"]
    assert batch.duplicates == 0


def test_iso_timestamps_and_default_now() -> None:
    batch = parse_batch(body(ev(timestamp="2026-09-21T10:00:00Z"),
                             ev(timestamp="2026-09-21T12:00:00+02:00"), ev(timestamp=None)),
                        False, "push", NOW, 100)
    assert [r[3] for r in rows(batch)] == [1789984800, 1789984800, NOW]


def test_repeats_in_a_batch_collapse_to_the_earliest() -> None:
    sub = str(uuid.uuid4())
    batch = parse_batch(body(ev(subscription_id=sub, timestamp=NOW - 5),
                             ev(subscription_id=sub, timestamp=NOW - 50),
                             ev(subscription_id=sub, event="clicked")), False, "push", NOW, 100)
    assert batch.duplicates == 1
    assert sorted((r[2], r[3]) for r in rows(batch)) == [(0, NOW - 50), (2, NOW - 10)]


def test_a_collapsed_repeat_keeps_the_attributes_of_every_copy() -> None:
    sub, osid = str(uuid.uuid4()), str(uuid.uuid4())
    batch = parse_batch(body(ev(subscription_id=sub, timestamp=NOW - 5, onesignal_id=osid,
                                external_id="user-1", device_type="iOS"),
                             ev(subscription_id=sub, timestamp=NOW - 50, external_id="user-2")),
                        False, "push", NOW, 100)
    assert batch.duplicates == 1
    [row] = rows(batch)
    assert row[3:] == (NOW - 50, osid, "user-1", "iOS", None)


def test_every_bad_event_is_named_by_index_and_field() -> None:
    with pytest.raises(BadRequest) as err:
        parse_batch(body(ev(), ev(subscription_id="nope"), ev(event="opened"),
                         ev(timestamp="yesterday"), ev(timestamp=12), "x",
                         ev(external_id=5)), False, "push", NOW, 100)
    assert err.value.messages == [
        "events[1].subscription_id: 'nope' is not a UUID",
        "events[2].event: 'opened' is not one of sent, delivered, clicked, failed, unsubscribed",
        "events[3].timestamp: 'yesterday' is neither unix seconds nor ISO 8601",
        "events[4].timestamp: 12 is out of range (unix seconds, 2000-01-01 to now)",
        "events[5]: must be an object",
        "events[6].external_id: must be a string or null",
    ]


def test_channel_decides_the_events() -> None:
    for channel, name in (("email", "opened"), ("email", "reported_spam"), ("sms", "rejected")):
        assert rows(parse_batch(body(ev(event=name)), False, channel, NOW, 10))
    with pytest.raises(BadRequest):
        parse_batch(body(ev(event="rejected")), False, "email", NOW, 10)


def test_ndjson_and_its_errors_by_line() -> None:
    lines = b"\n".join(json.dumps(ev()).encode() for _ in range(3)) + b"\n"
    assert len(rows(parse_batch(lines, True, "push", NOW, 10))) == 3
    with pytest.raises(BadRequest) as err:
        parse_batch(lines + b"{not json}\n", True, "push", NOW, 10)
    assert err.value.messages[0].startswith("events[3]: line 4 is not valid JSON")


def test_too_many_events_is_413_and_empty_is_400() -> None:
    with pytest.raises(PayloadTooLarge):
        parse_batch(body(*[ev() for _ in range(11)]), False, "push", NOW, 10)
    with pytest.raises(BadRequest):
        parse_batch(body(), False, "push", NOW, 10)
    with pytest.raises(BadRequest):
        parse_batch(b'{"events": 3}', False, "push", NOW, 10)


def ndjson(*events: object) -> bytes:
    return b"\n".join(json.dumps(e).encode() for e in events) + b"\n"


def both_paths(body: bytes, channel: str = "push", limit: int = 100) -> tuple[object, object]:
    """What the Arrow path (None: not its kind) and the exact path make of a body."""
    def outcome(parse):  # type: ignore[no-untyped-def]
        try:
            return parse()
        except (BadRequest, PayloadTooLarge) as exc:
            return type(exc)
    common = event_batch._common_batch(body, channel, NOW, limit)
    return (None if common is None else ParsedBatch(common, 0),
            outcome(lambda: event_batch._parse_exactly(body, True, channel, NOW, limit)))


def test_the_common_ndjson_batch_takes_the_arrow_path_and_matches_the_exact_one() -> None:
    common = [ev(onesignal_id=str(uuid.uuid4()).upper(), external_id="ü-1, \"=x\"",
                 device_type="iOS", failure_message="line\nbreak"),
              ev(event="delivered", timestamp=None), ev(event="failed", external_id=""),
              ev(subscription_id=str(uuid.uuid4()).upper(), extra={"nested": [1, 2]})]
    fast, exact = both_paths(ndjson(*common))
    assert isinstance(fast, ParsedBatch) and isinstance(exact, ParsedBatch)
    assert rows(fast) == rows(exact) and fast.events.schema == exact.events.schema
    assert rows(fast)[1][3] == NOW  # no time: now
    assert both_paths(ndjson(*common)[:-1])[0] is not None  # no final newline


@pytest.mark.parametrize("case", [
    "bad uuid", "uuid pair in one id", "unknown event", "null subscription", "no event",
    "iso time", "float time", "string time", "too old", "too far ahead", "long text",
    "nul", "number for text", "repeat", "blank line", "two on a line", "not an object",
    "invalid utf-8", "too many", "empty",
])
def test_every_uncommon_batch_leaves_the_arrow_path_for_the_exact_one(case: str) -> None:
    sub = str(uuid.uuid4())
    bodies = {
        "bad uuid": ndjson(ev(), ev(subscription_id="nope")),
        "uuid pair in one id": ndjson(ev(subscription_id=f"{uuid.uuid4()}\n{uuid.uuid4()}"),
                                      ev()),
        "unknown event": ndjson(ev(event="opened")),
        "null subscription": ndjson(ev(subscription_id=None)),
        "no event": ndjson({"subscription_id": sub}),
        "iso time": ndjson(ev(timestamp="2026-09-21T10:00:00Z")),
        "float time": ndjson(ev(timestamp=float(NOW - 1))),
        "string time": ndjson(ev(timestamp=str(NOW - 1))),
        "too old": ndjson(ev(timestamp=12)),
        "too far ahead": ndjson(ev(timestamp=NOW + 2 * 86400)),
        "long text": ndjson(ev(device_type="x" * 33)),
        "nul": ndjson(ev(failure_message="a\x00b")),
        "number for text": ndjson(ev(external_id=5)),
        "repeat": ndjson(ev(subscription_id=sub), ev(subscription_id=sub.upper())),
        "blank line": ndjson(ev()) + b"\n" + ndjson(ev()),
        "two on a line": ndjson(ev()).strip() + b" " + ndjson(ev()),
        "not an object": ndjson(ev(), [1, 2]),
        "invalid utf-8": ndjson(ev(external_id="X")).replace(b'"X"', b'"\xff"'),
        "too many": ndjson(*[ev() for _ in range(3)]),
        "empty": b"",
    }
    fast, exact = both_paths(bodies[case], limit=2)
    assert fast is None
    if case in ("iso time", "repeat", "blank line"):
        assert isinstance(exact, ParsedBatch)  # accepted, by the exact path
    elif case == "too many":
        assert exact is PayloadTooLarge
    else:
        assert exact is BadRequest
