"""pivot.pivot: the first known value is the first recorded, in whatever order
a range holds the events."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc
import pytest

from msgtrail.channels import EVENT_CODE
from msgtrail.store import event_batch, pivot

X = "10000000-0000-4000-8000-000000000001"  # part 1


@pytest.mark.parametrize("between", ["20000000-0000-4000-8000-000000000002",  # part 2
                                     "00000000-0000-4000-8000-000000000003"])  # part 0
def test_a_subscription_split_around_another_part_keeps_its_first_recorded_value(
        between: str) -> None:
    """As a split file holds them: a later batch's event of X, another part's event,
    then an earlier batch's event of X (a compacted segment stored after the others).
    `rec` falls only where the part changes, yet X's events are out of order."""
    rows = [(0, X, EVENT_CODE["sent"], 1_700_000_010, None, "later", "iOS", None),
            (1, between, EVENT_CODE["sent"], 1_700_000_000, None, "other", None, None),
            (2, X, EVENT_CODE["delivered"], 1_700_000_005, None, "first", None, None)]
    events = event_batch.columns(rows)
    recs = pa.array([5 << event_batch.REC_BITS, 7 << event_batch.REC_BITS,
                     3 << event_batch.REC_BITS], pa.int64())
    table = pa.Table.from_batches([events]).set_column(
        event_batch.SCHEMA.get_field_index("rec"), "rec", recs)
    with pivot.connect() as con:
        pivoted = pivot.pivot(con, table, "push")
    row = pivoted.filter(pc.equal(pivoted.column("subscription_id"), X)).to_pylist()[0]
    assert (row["external_id"], row["device_type"]) == ("first", "iOS")
    assert (row["sent"], row["delivered"]) == (1_700_000_010, 1_700_000_005)
