"""Pure pieces of the export pipeline, without a server."""

from msgtrail.export.pipeline import rows_from_totals, selected_events


def test_row_estimates_come_from_the_folds_counters() -> None:
    totals = {"recipients": 100, "sent": 98, "clicked": 7}
    assert rows_from_totals(totals, []) == 100
    assert rows_from_totals(totals, ["clicked"]) == 7
    assert rows_from_totals(totals, ["opened"]) == 0
    assert rows_from_totals(totals, ["clicked", "failed"]) is None  # overlaps: count them
    assert selected_events("history", {"events": "clicked"}) == ["clicked"]
    assert selected_events("export", {"events": []}) == []
