"""Fixtures shared by the acceptance tests that run workers as their own processes."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator

import pytest

from msgtrail.testing.service import Server, start_server, stop_server
from tests.helpers import stop_processes


@pytest.fixture
def api_only(tmp_path, backend) -> Iterator[tuple[Server, list[subprocess.Popen]]]:  # type: ignore[no-untyped-def]
    """An API process without in-process workers, and the list of `msgtrail worker`
    processes the test starts beside it; all stopped afterwards."""
    srv = start_server(tmp_path, "--workers", "0", backend=backend)
    workers: list[subprocess.Popen] = []
    try:
        yield srv, workers
    finally:
        stop_processes(workers)
        stop_server(srv)
