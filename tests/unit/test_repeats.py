"""Compaction's repeat removal: an event stored twice (a retried request) is kept
once, at its earliest `rec`; events differing in any column, a null against an empty
string included, are all kept."""

import pyarrow as pa

from msgtrail.store import activity
from msgtrail.store.event_batch import SCHEMA

A, B = bytes(16), bytes([1] * 16)


def _table(rows: list[tuple]) -> pa.Table:
    return pa.Table.from_pylist([dict(zip(SCHEMA.names, r, strict=True)) for r in rows], SCHEMA)


def test_repeats_keep_the_earliest_rec_and_differences_stay() -> None:
    rows = [
        (A, 0, 10, None, None, None, None, 7),
        (B, 0, 10, "o", "x", "iOS", None, 3),
        (A, 0, 10, None, None, None, None, 2),  # a repeat of the first, recorded earlier
        (A, 0, 10, None, "", None, None, 9),  # "" is not null: not a repeat
        (B, 0, 10, "o", "x", "iOS", None, 5),  # a repeat
        (B, 0, 10, "o", "y", "iOS", None, 4),  # another external id
        (B, 3, 10, "o", "x", "iOS", "gone", 8),
        (B, 3, 10, "o", "x", "iOS", "gone", 1),  # a repeat, earliest
        (A, 1, 10, None, None, None, None, 6),  # another event
    ]
    kept = activity._without_repeats(_table(rows))
    assert sorted(kept.column("rec").to_pylist()) == [1, 2, 3, 4, 6, 9]


def test_no_events_or_one() -> None:
    assert activity._without_repeats(_table([])).num_rows == 0
    assert activity._without_repeats(_table([(A, 0, 1, None, None, None, None, 1)])
                                     ).num_rows == 1
