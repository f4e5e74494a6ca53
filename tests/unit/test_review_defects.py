"""Defects found in review, each pinned without a server or a database: the client's
restart after 416, `-o dir/`, the store health cache, frozen migrations."""

from __future__ import annotations

import ast
import importlib.util
from pathlib import Path

from click.testing import CliRunner

from msgtrail.client import Client
from msgtrail.client.cli import export_command
from msgtrail.files import HealthCheck, MemoryStore
from tests.unit.fault_server import FILE_PATH
from tests.unit.test_client import DATA, ROWS, fault_server

MIGRATIONS = Path(__file__).resolve().parents[2] / "msgtrail" / "db" / "migrations" / "versions"


def test_a_416_on_resume_restarts_from_byte_zero(tmp_path) -> None:
    # The connection drops halfway; the resumed request (Range) is refused with 416,
    # as it is for a file written again. The client must drop what it holds and ask
    # for the whole file, not repeat the same Range until the deadline.
    with fault_server("drop", "416") as server:
        with Client("key", "app", server.base_url, poll_initial=0.02, poll_max=0.1,
                    deadline=10) as client:
            result = client.export_audience_activity("msg", tmp_path / "out.csv.gz")
        gets = [headers for method, _, headers in server.script.seen if method == "GET"]
    assert result.rows == ROWS and (tmp_path / "out.csv.gz").read_bytes() == DATA
    assert "Range" in gets[1] and "Range" not in gets[-1]
    assert [p.name for p in tmp_path.iterdir()] == ["out.csv.gz"]


def test_output_with_a_trailing_slash_is_a_directory_created_on_demand(tmp_path) -> None:
    with fault_server() as server:
        result = CliRunner().invoke(export_command, [
            "msg", "--app-id", "app", "--api-key", "key", "--base-url", server.base_url,
            "-o", f"{tmp_path}/exports/", "--quiet"])
    assert result.exit_code == 0, result.output
    written = tmp_path / "exports" / Path(FILE_PATH).name
    assert written.read_bytes() == DATA


def test_store_health_is_asked_once_while_good_and_again_once_bad() -> None:
    store = MemoryStore()
    check = HealthCheck(store, ttl=60)
    assert all(check() for _ in range(100))
    assert store.health_checks == 1
    store.broken = True
    fresh = HealthCheck(store, ttl=60)
    assert not fresh() and not fresh()
    assert store.health_checks == 3  # a bad answer is not remembered
    store.broken = False
    assert fresh() and store.health_checks == 4


def test_migrations_import_nothing_of_msgtrail() -> None:
    """A migration is a frozen copy: importing live definitions (channels.EVENTS, say)
    would let a later change rewrite what an old revision creates."""
    for path in sorted(MIGRATIONS.glob("0*.py")):
        tree = ast.parse(path.read_text())
        imported = [n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)]
        imported += [a.name for n in ast.walk(tree) if isinstance(n, ast.Import)
                     for a in n.names]
        assert not [m for m in imported if m and m.startswith("msgtrail")], path.name


def _migration(name: str):  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location(name, MIGRATIONS / f"{name}.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_migration_0004_neutralises_stored_lines_cell_by_cell() -> None:
    neutralised = _migration("0004_raw_line")._neutralised
    sub = "00000000-0000-4000-8000-000000000001"
    line = f'"=HYPERLINK(""x"",""y"")",{sub},@dev,2026-11-23T10:00:00Z,,,,,,"-1,\n2"'
    assert neutralised(line) == (
        f'"\'=HYPERLINK(""x"",""y"")",{sub},\'@dev,2026-11-23T10:00:00Z,,,,,,"\'-1,\n2"')
    plain = f'user-1,{sub},iOS,2026-11-23T10:00:00Z,,,,,,"a ""b"", c"'
    assert neutralised(plain) == plain
