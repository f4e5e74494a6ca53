"""msgtrail.export.params: every value a caller sends for an export's format and filter
is checked, and a wrong one is a 400 naming the field, whatever its JSON type."""

from __future__ import annotations

import pytest

from msgtrail.errors import BadRequest
from msgtrail.export.params import activity_filter, file_format


@pytest.mark.parametrize("value", [{}, [], ["csv"], 1, True, "xlsx"])
def test_a_format_that_is_not_one_of_the_names_is_refused(value: object) -> None:
    with pytest.raises(BadRequest) as refused:
        file_format(value)
    assert refused.value.messages == ["format: must be one of csv, jsonl, parquet"]


def test_a_format_given_or_not() -> None:
    assert [file_format(v) for v in (None, "", "csv", "jsonl", "parquet")] == [
        "csv", "csv", "csv", "jsonl", "parquet"]


@pytest.mark.parametrize("body", [{"format": {}}, {"format": []}, {"since": {}},
                                  {"format": "parquet", "compression": "gzip"}])
def test_an_activity_filter_of_the_wrong_shape_is_refused(body: dict[str, object]) -> None:
    with pytest.raises(BadRequest):
        activity_filter(body)
