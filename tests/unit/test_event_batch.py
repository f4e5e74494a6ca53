"""Parsing and validation of event batches, without a server."""

import json
import uuid

import pytest

from msgtrail.channels import EVENT_CODE
from msgtrail.errors import BadRequest, PayloadTooLarge
from msgtrail.event_batch import parse_batch

NOW = 1_790_000_000


def body(*events: dict) -> bytes:
    return json.dumps({"events": list(events)}).encode()


def ev(**kw: object) -> dict:
    return {"subscription_id": str(uuid.uuid4()), "event": "sent", "timestamp": NOW - 10, **kw}


def test_valid_batch_becomes_rows() -> None:
    sub, osid = uuid.uuid4(), uuid.uuid4()
    batch = parse_batch(body(ev(subscription_id=str(sub), onesignal_id=str(osid),
                                external_id="u-1", device_type="iOS")),
                        False, "push", NOW, 100)
    assert batch.rows == [(0, str(sub), EVENT_CODE["sent"], NOW - 10, str(osid), "u-1", "iOS",
                           None)]


def test_ids_are_stored_in_canonical_lower_case() -> None:
    sub = uuid.uuid4()
    batch = parse_batch(body(ev(subscription_id=str(sub).upper())), False, "push", NOW, 10)
    assert batch.rows[0][1] == str(sub)
    with pytest.raises(BadRequest) as err:
        parse_batch(body(ev(), ev(onesignal_id=str(sub)[:-1] + "g")), False, "push", NOW, 10)
    assert err.value.messages == [f"events[1].onesignal_id: '{str(sub)[:-1]}g' is not a UUID"]
    assert batch.duplicates == 0


def test_iso_timestamps_and_default_now() -> None:
    batch = parse_batch(body(ev(timestamp="2026-09-21T10:00:00Z"),
                             ev(timestamp="2026-09-21T12:00:00+02:00"), ev(timestamp=None)),
                        False, "push", NOW, 100)
    assert [r[3] for r in batch.rows] == [1789984800, 1789984800, NOW]


def test_repeats_in_a_batch_collapse_to_the_earliest() -> None:
    sub = str(uuid.uuid4())
    batch = parse_batch(body(ev(subscription_id=sub, timestamp=NOW - 5),
                             ev(subscription_id=sub, timestamp=NOW - 50),
                             ev(subscription_id=sub, event="clicked")), False, "push", NOW, 100)
    assert batch.duplicates == 1
    assert sorted((r[2], r[3]) for r in batch.rows) == [(0, NOW - 50), (2, NOW - 10)]


def test_a_collapsed_repeat_keeps_the_attributes_of_every_copy() -> None:
    sub, osid = str(uuid.uuid4()), str(uuid.uuid4())
    batch = parse_batch(body(ev(subscription_id=sub, timestamp=NOW - 5, onesignal_id=osid,
                                external_id="user-1", device_type="iOS"),
                             ev(subscription_id=sub, timestamp=NOW - 50, external_id="user-2")),
                        False, "push", NOW, 100)
    assert batch.duplicates == 1
    [row] = batch.rows
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
        assert parse_batch(body(ev(event=name)), False, channel, NOW, 10).rows
    with pytest.raises(BadRequest):
        parse_batch(body(ev(event="rejected")), False, "email", NOW, 10)


def test_ndjson_and_its_errors_by_line() -> None:
    lines = b"\n".join(json.dumps(ev()).encode() for _ in range(3)) + b"\n"
    assert len(parse_batch(lines, True, "push", NOW, 10).rows) == 3
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
