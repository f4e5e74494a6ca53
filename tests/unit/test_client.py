"""The client against faults msgtrail never produces: each ends in its documented
outcome, within the deadline, and never leaves a partial file under the final name."""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import time
import uuid
from pathlib import Path

import pytest

from msgtrail.client import (
    AsyncClient,
    BadRequestError,
    Client,
    CorruptFileError,
    DeadlineExceededError,
)
from tests.unit.fault_server import FaultServer, Script

ROWS = 5_000
CSV = ("external_user_id,subscription_id,device_type,sent,delivered,clicked,onesignal_id,"
       "failed,unsubscribed,failure_message\n" + "".join(
           f"user-{i},{uuid.UUID(int=i)},Android,2026-11-23T10:00:00Z,,,,,,\n"
           for i in range(ROWS))).encode()
DATA = gzip.compress(CSV)


def fault_server(*gets: str, posts: list | None = None) -> FaultServer:
    server = FaultServer(Script(DATA, gets=list(gets) or ["full"]))
    server.script.posts = posts or [(200, {}, {"csv_file_url": server.file_url})]
    return server


def client(server: FaultServer, **options: float) -> Client:
    return Client("key", "app", server.base_url, poll_initial=0.02, poll_max=0.2, **options)


def only_the_result(tmp_path: Path, dest: Path) -> None:
    """Nothing but the finished file (if any) is left in the directory."""
    assert [p.name for p in tmp_path.iterdir()] == ([dest.name] if dest.exists() else [])


def test_429_with_retry_after_is_waited_out(tmp_path) -> None:
    with fault_server() as server:
        server.script.posts = [(429, {"Retry-After": "1"}, {"errors": ["API rate limit exceeded"]}),
                               (200, {}, {"csv_file_url": server.file_url})]
        start = time.monotonic()
        with client(server) as c:
            result = c.export_audience_activity("msg", tmp_path / "out.csv.gz")
        assert time.monotonic() - start >= 1
        assert server.count("POST") == 2
        assert result.rows == ROWS and (tmp_path / "out.csv.gz").read_bytes() == DATA
        only_the_result(tmp_path, result.path)


def test_503_without_retry_after_backs_off_then_succeeds(tmp_path) -> None:
    with fault_server("503", "503", "full") as server:
        server.script.posts = [(503, {}, {"errors": ["Service temporarily unavailable"]}),
                               (200, {}, {"csv_file_url": server.file_url})]
        with client(server) as c:
            result = c.export_audience_activity("msg", tmp_path / "out.csv.gz")
        assert result.rows == ROWS and server.count("POST") == 2 and server.count("GET") == 3


def test_many_404s_then_200(tmp_path) -> None:
    with fault_server(*["404"] * 8, "full") as server, client(server) as c:
        phases = []
        result = c.export_audience_activity("msg", tmp_path, on_progress=lambda p: phases.append(
            p.phase))
        assert server.count("GET") == 9
        assert result.path.name == "events_audience-activity-msg-push-2026-11-23T10-00-00Z.csv.gz"
        assert result.bytes == len(DATA) and phases[0] == "requesting" and phases[-1] == "done"
        only_the_result(tmp_path, result.path)


def test_a_dropped_connection_resumes_with_range(tmp_path) -> None:
    with fault_server("drop", "full") as server, client(server) as c:
        result = c.export_audience_activity("msg", tmp_path / "out.csv.gz", decompress=False)
        (_m1, _p1, first), (_m2, _p2, second) = [s for s in server.script.seen if s[0] == "GET"]
        assert "Range" not in first and second["Range"] == f"bytes={len(DATA) // 2}-"
        assert result.path.read_bytes() == DATA
        only_the_result(tmp_path, result.path)


def test_a_slow_file_arrives_whole_with_byte_progress(tmp_path) -> None:
    with fault_server("slow") as server, client(server) as c:
        sizes = []
        result = c.export_audience_activity(
            "msg", tmp_path / "out.csv", decompress=True,
            on_progress=lambda p: p.phase == "downloading" and p.bytes and sizes.append(p.bytes))
        assert result.path.read_bytes() == CSV and result.rows == ROWS
        assert len(sizes) >= 5 and sizes == sorted(sizes) and sizes[-1] == len(DATA)


def test_a_corrupt_gzip_raises_and_leaves_nothing(tmp_path) -> None:
    with fault_server("corrupt") as server, client(server) as c, \
            pytest.raises(CorruptFileError):
            c.export_audience_activity("msg", tmp_path / "out.csv.gz")
    only_the_result(tmp_path, tmp_path / "out.csv.gz")
    assert not (tmp_path / "out.csv.gz").exists()


def test_the_deadline_is_never_exceeded(tmp_path) -> None:
    with fault_server("404") as server, client(server, deadline=2) as c:
        start = time.monotonic()
        with pytest.raises(DeadlineExceededError) as err:
            c.export_audience_activity("msg", tmp_path / "out.csv.gz")
        assert time.monotonic() - start <= 2.3
        assert "file not ready yet" in str(err.value)
    only_the_result(tmp_path, tmp_path / "out.csv.gz")


def test_a_retry_after_beyond_the_deadline_gives_up_at_once(tmp_path) -> None:
    with fault_server() as server:
        server.script.posts = [(429, {"Retry-After": "600"}, {"errors": ["API rate limit exceeded"]})]
        with client(server, deadline=30) as c:
            start = time.monotonic()
            with pytest.raises(DeadlineExceededError) as err:
                c.export_audience_activity("msg", tmp_path / "out.csv.gz")
            assert time.monotonic() - start < 2
            assert "API rate limit exceeded" in str(err.value)


def test_server_errors_are_typed_and_carry_the_messages(tmp_path) -> None:
    with fault_server() as server:
        server.script.posts = [(400, {}, {"errors": ["message_id: 'x' is not a valid UUID"]})]
        with client(server) as c, pytest.raises(BadRequestError) as err:
            c.export_audience_activity("x", tmp_path / "out.csv.gz")
        assert err.value.status == 400
        assert err.value.errors == ["message_id: 'x' is not a valid UUID"]


def test_async_client_resumes_too(tmp_path) -> None:
    async def run() -> None:
        with fault_server("404", "drop", "full") as server:
            async with AsyncClient("key", "app", server.base_url, poll_initial=0.02) as c:
                result = await c.export_audience_activity("msg", tmp_path / "out.csv.gz")
            assert result.path.read_bytes() == DATA and result.rows == ROWS
            assert server.count("GET") == 3

    asyncio.run(run())
    only_the_result(tmp_path, tmp_path / "out.csv.gz")


def _with_manifest(server: FaultServer, **changes: object) -> None:
    """The export has an id, and its status a manifest of DATA (changed as given)."""
    manifest = {"rows": ROWS, "bytes": len(DATA), "sha256": hashlib.sha256(DATA).hexdigest(),
                **changes}
    server.script.posts = [(200, {}, {"csv_file_url": server.file_url, "export_id": "e1"})]
    server.script.status = {"state": "ready", "manifest": manifest}


def test_a_download_matching_its_manifest_is_kept(tmp_path) -> None:
    with fault_server() as server, client(server) as c:
        _with_manifest(server)
        result = c.export_audience_activity("msg", tmp_path / "out.csv.gz")
    assert result.rows == ROWS and result.path.read_bytes() == DATA


@pytest.mark.parametrize("changes", [
    {"sha256": hashlib.sha256(b"another file").hexdigest()},
    {"rows": ROWS + 1},
])
def test_a_download_unlike_its_manifest_raises_and_leaves_nothing(tmp_path, changes) -> None:
    """The bytes are a valid gzip CSV, but not the file the manifest describes."""
    with fault_server() as server, client(server) as c:
        _with_manifest(server, **changes)
        with pytest.raises(CorruptFileError, match="manifest"):
            c.export_audience_activity("msg", tmp_path / "out.csv.gz")
    only_the_result(tmp_path, tmp_path / "out.csv.gz")
    assert not (tmp_path / "out.csv.gz").exists()


def test_the_async_client_checks_the_manifest_too(tmp_path) -> None:
    async def run() -> None:
        async with AsyncClient("key", "app", server.base_url, poll_initial=0.02,
                               poll_max=0.2) as c:
            await c.export_audience_activity("msg", tmp_path / "out.csv.gz")

    with fault_server() as server:
        _with_manifest(server, rows=ROWS - 1)
        with pytest.raises(CorruptFileError, match="rows"):
            asyncio.run(run())
    assert not (tmp_path / "out.csv.gz").exists()
