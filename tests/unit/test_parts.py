"""activity.by_part: which segment of a batch each event is stored in."""

from __future__ import annotations

import uuid

import pyarrow as pa
import pytest

from msgtrail.store import activity, event_batch


def _batch(subs: list[str]) -> pa.RecordBatch:
    return event_batch.columns([(i, sub, 1, 1_700_000_000, None, None, None, None)
                                for i, sub in enumerate(subs)])


def _ids(rows: pa.RecordBatch) -> list[str]:
    return [str(uuid.UUID(bytes=b)) for b in rows.column(0).to_pylist()]


def test_a_batch_is_grouped_by_first_hex_digit_in_digit_order_keeping_every_row() -> None:
    subs = [str(uuid.UUID(int=(d << 124) | n)) for n in range(3) for d in (15, 0, 7, 0)]
    groups = activity.by_part(_batch(subs))
    assert [k for k, _ in groups] == [0, 7, 15]
    for k, rows in groups:
        assert {s[0] for s in _ids(rows)} == {"0123456789abcdef"[k or 0]}
    assert sorted(s for _, rows in groups for s in _ids(rows)) == sorted(subs)


@pytest.mark.parametrize(("sub", "part"), [
    ("f1c0ffee-0000-4000-8000-000000000000", 15), ("0a000000-0000-4000-8000-000000000000", 0),
    ("9fffffff-ffff-4fff-bfff-ffffffffffff", 9), ("a0000000-0000-0000-0000-000000000000", 10)])
def test_one_event_goes_where_the_grouping_would_put_it(sub: str, part: int) -> None:
    """A single event (compaction splits one) goes where a batch holding that id twice
    goes."""
    [(alone, rows)] = activity.by_part(_batch([sub]))
    [(twice, _)] = activity.by_part(_batch([sub, sub]))
    assert alone == twice == part
    assert rows.num_rows == 1


def test_ids_are_stored_as_their_bytes_in_the_order_of_their_text() -> None:
    subs = sorted(str(uuid.uuid4()) for _ in range(50))
    keys = event_batch.keys(pa.array(subs[::-1]).slice(10, 30))
    assert [str(uuid.UUID(bytes=k)) for k in keys.to_pylist()] == subs[::-1][10:40]
    assert keys.to_pylist() == sorted(keys.to_pylist(), reverse=True)


@pytest.mark.parametrize("ids", [["A1C0FFEE-0000-4000-8000-000000000000x"], ["0a"], [None]])
def test_only_canonical_ids_become_keys(ids: list[str | None]) -> None:
    with pytest.raises(ValueError, match="canonical"):
        event_batch.keys(pa.array(ids, pa.string()))
