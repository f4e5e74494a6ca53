"""activity.by_part: which segment of a batch each event is stored in."""

from __future__ import annotations

import uuid

import pytest

from msgtrail import activity, event_batch


def _batch(subs: list[str]) -> object:
    return event_batch.columns([(i, sub, 1, 1_700_000_000, None, None, None, None)
                                for i, sub in enumerate(subs)])


def test_a_batch_is_grouped_by_first_hex_digit_in_digit_order_keeping_every_row() -> None:
    subs = [str(uuid.UUID(int=(d << 124) | n)) for n in range(3) for d in (15, 0, 7, 0)]
    groups = activity.by_part(_batch(subs))  # type: ignore[arg-type]
    assert [k for k, _ in groups] == [0, 7, 15]
    for k, rows in groups:
        assert {s[0] for s in rows.column(0).to_pylist()} == {"0123456789abcdef"[k]}
    assert sorted(s for _, rows in groups for s in rows.column(0).to_pylist()) == sorted(subs)


@pytest.mark.parametrize(("sub", "part"), [
    ("f1c0ffee-0000-4000-8000-000000000000", 15), ("0a", 0), ("9", 9),
    ("A1C0FFEE-0000-4000-8000-000000000000", None), ("", None), ("x", None)])
def test_one_event_goes_where_the_grouping_would_put_it(sub: str, part: int | None) -> None:
    """A single event (compaction splits one) goes where a batch holding that id twice
    goes."""
    [(alone, rows)] = activity.by_part(_batch([sub]))  # type: ignore[arg-type]
    [(twice, _)] = activity.by_part(_batch([sub, sub]))  # type: ignore[arg-type]
    assert alone == twice == part
    assert rows.num_rows == 1
