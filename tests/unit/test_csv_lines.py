"""CSV lines as Arrow builds them: every cell rule, written out by hand."""

from __future__ import annotations

import pyarrow as pa

from msgtrail import csv_schema
from msgtrail.export import history_csv

SUB = "00000000-0000-4000-8000-000000000001"
OSID = "00000000-0000-4000-8000-0000000000aa"


def _table(external: list[str | None], sent: list[int | None]) -> pa.Table:
    n = len(external)
    return pa.table({
        "subscription_id": [SUB] * n, "onesignal_id": [OSID] + [None] * (n - 1),
        "external_id": external, "device_type": ["Android"] * n,
        "failure_message": [None] * n, "sent": pa.array(sent, pa.int64()),
        **{e: pa.nulls(n, pa.int64()) for e in ("delivered", "clicked", "failed",
                                                 "unsubscribed")}})


def test_cells_are_quoted_neutralised_and_times_formatted_once_each() -> None:
    table = _table(["plain", '=1+1', 'a,"b"', "-x\ny", None, "\tt", "日本", "\r+", "@a", "+"],
                   [0, 1_700_000_000, None, 1_700_000_000, 4_102_444_799, 59, 86_399,
                    None, None, None])
    tail = ",,,"
    assert csv_schema.lines(table, "push").to_pylist() == [
        f"plain,{SUB},Android,1970-01-01T00:00:00Z,,,{OSID}{tail}\n",
        f"'=1+1,{SUB},Android,2023-11-14T22:13:20Z,,,{tail}\n",
        f'"a,""b""",{SUB},Android,,,,{tail}\n',
        f"\"'-x\ny\",{SUB},Android,2023-11-14T22:13:20Z,,,{tail}\n",
        f",{SUB},Android,2099-12-31T23:59:59Z,,,{tail}\n",
        f"'\tt,{SUB},Android,1970-01-01T00:00:59Z,,,{tail}\n",
        f"日本,{SUB},Android,1970-01-01T23:59:59Z,,,{tail}\n",
        f"\"'\r+\",{SUB},Android,,,,{tail}\n",
        f"'@a,{SUB},Android,,,,{tail}\n",
        f"'+,{SUB},Android,,,,{tail}\n",
    ]
    raw = csv_schema.lines(table, "push", safe=False).to_pylist()
    assert raw[1].startswith("=1+1,") and raw[3].startswith('"-x\ny",')


def test_history_lines_quote_every_value() -> None:
    table = _table(['=x"y', None], [1, None]).set_column(
        7, "clicked", pa.array([5, None], pa.int64()))
    assert history_csv.lines(table, "push", "clicked").to_pylist() == [
        f'"{SUB}","{OSID}","\'=x""y","push","5"\n', f'"{SUB}","","","push",""\n']
    assert history_csv.lines(table, "push", "sent", raw=True).to_pylist()[0] == (
        f'"{SUB}","{OSID}","=x""y","push",""\n')


def test_quoting_looks_only_at_the_cells_of_a_slice() -> None:
    """Lines are built from slices of a range's rows: a cell needing quotes is found
    in a slice however it sits in the shared buffer, and cells outside the slice
    change nothing."""
    values = pa.array(["a,b", "plain", 'say "hi"', "also plain", None])
    assert csv_schema.quoted(values.slice(1, 1)).to_pylist() == ["plain"]
    assert csv_schema.quoted(values.slice(1, 3)).to_pylist() == [
        "plain", '"say ""hi"""', "also plain"]
    assert csv_schema.quoted(values.slice(0, 2)).to_pylist() == ['"a,b"', "plain"]
    assert csv_schema.quoted(values.slice(4)).to_pylist() == [None]
    # Plain cells before the slice must not hide one that needs quotes within it.
    assert csv_schema.quoted(pa.array(["plain", "x", "a,b"]).slice(2)).to_pylist() == [
        '"a,b"']
    line_breaks = pa.array(["x", "two\nlines", "cr\r"]).slice(1)
    assert csv_schema.quoted(line_breaks).to_pylist() == ['"two\nlines"', '"cr\r"']
