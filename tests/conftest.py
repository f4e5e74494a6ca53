"""Fixtures shared by every layer: the configuration a test runs on, a server of it,
an app; and the rule that a skipped test fails the run."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from msgtrail.testing.backends import Embedded, Scale
from msgtrail.testing.seaweed import start_seaweed
from msgtrail.testing.service import AppCreds, Server, start_server, stop_server


def _backends() -> list[str]:
    """Both by default; MSGTRAIL_TEST_BACKENDS=embedded (or scale) narrows a local run."""
    wanted = os.environ.get("MSGTRAIL_TEST_BACKENDS", "embedded,scale")
    return [b.strip() for b in wanted.split(",") if b.strip()]


@pytest.fixture(scope="session", params=_backends())
def backend(request: pytest.FixtureRequest,
            tmp_path_factory: pytest.TempPathFactory) -> Iterator[Embedded | Scale]:
    """The configuration a behaviour test runs on; every such test runs on both."""
    if request.param == "embedded":
        yield Embedded()
        return
    seaweed = start_seaweed(tmp_path_factory.mktemp("seaweed"))
    try:
        yield Scale(seaweed)
    finally:
        seaweed.stop()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, backend: Embedded | Scale) -> Iterator[Server]:
    srv = start_server(tmp_path_factory.mktemp("msgtrail"), backend=backend)
    yield srv
    stop_server(srv)


@pytest.fixture
def app_creds(server: Server) -> AppCreds:
    return server.create_app()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """A skipped test is a test that did not run: the suite fails, as it does for a
    missing PostgreSQL, Redis or SeaweedFS, instead of passing without it."""
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if exitstatus == 0 and reporter is not None and reporter.stats.get("skipped"):
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
