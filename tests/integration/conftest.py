"""The service in-process (FastAPI's TestClient over ASGI, its worker on a thread), on
the real databases and stores of each configuration: no process to start, so these
tests cost what their requests cost."""

from __future__ import annotations

import csv
import gzip
import io
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from msgtrail import apps
from msgtrail.db.engine import make_engine, upgrade
from msgtrail.service import Service
from msgtrail.settings import Settings
from msgtrail.testing.backends import Embedded, Scale
from msgtrail.web.app import create_app, served
from msgtrail.web.dashboard.session import COOKIE

_CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def csrf_of(page: httpx.Response) -> str:
    """The CSRF token of a dashboard page's forms."""
    found = _CSRF.search(page.text)
    assert found, page.text
    return found.group(1)


@dataclass
class InProcess:
    client: TestClient
    app_id: str
    key: str
    engine: Engine
    settings: Settings
    service: Service

    def sign_in(self, key: str | None = None) -> tuple[str, str]:
        """Sign in to the dashboard as a browser would; the session cookie and the
        signed-in CSRF token."""
        self.client.cookies.clear()
        token = csrf_of(self.client.get("/"))
        r = self.client.post("/signin", data={"csrf": token, "app_id": self.app_id,
                                              "api_key": key or self.key},
                             follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"] == "/messages", r.text
        cookie = self.client.cookies[COOKIE]
        page = self.client.get("/messages")
        assert page.status_code == 200
        return cookie, csrf_of(page)

    def create_message(self, channel: str = "push", prefix: str = "") -> str:
        r = self.client.post(f"{prefix}/notifications", json={
            "app_id": self.app_id, "name": "m", "target_channel": channel})
        assert r.status_code == 200, r.text
        return str(r.json()["id"])

    def send(self, message_id: str, events: list[dict]) -> httpx.Response:  # type: ignore[type-arg]
        return self.client.post(f"/notifications/{message_id}/events",
                                params={"app_id": self.app_id}, json={"events": events})

    def export(self, message_id: str, **params: str) -> list[dict[str, str]]:
        """The message's audience-activity CSV as rows, waiting for the export to finish
        (one export at a time per account: the next request waits for this one)."""
        data, _ = self.export_file(message_id, **params)
        return list(csv.DictReader(io.StringIO(gzip.decompress(data).decode(), newline="")))

    def export_file(self, message_id: str, **params: str) -> tuple[bytes, dict[str, Any]]:
        """An export's file as served, and its ready status."""
        r = self.client.post(f"/notifications/{message_id}/export_events",
                             params={"app_id": self.app_id, **params})
        assert r.status_code == 200, r.text
        deadline = time.monotonic() + 30
        while True:
            doc = self.client.get(f"/notifications/{message_id}/export_events/"
                                  f"{r.json()['export_id']}", params={"app_id": self.app_id}).json()
            if doc["state"] == "ready":
                break
            assert doc["state"] in ("queued", "running"), doc
            assert time.monotonic() < deadline, "export not ready in 30 s"
            time.sleep(0.05)
        return self.fetch(r.json()["csv_file_url"]), doc

    def activity_export(self, **body: Any) -> tuple[bytes, dict[str, Any]]:
        """An app-level activity export's file as served, and its ready status."""
        r = self.client.post(f"/apps/{self.app_id}/activity_exports", json=body)
        assert r.status_code == 200, r.text
        doc = self.wait_activity(r.json()["export_id"])
        assert doc["file_url"] == r.json()["file_url"]
        return self.fetch(r.json()["file_url"]), doc

    def wait_activity(self, export_id: str, timeout: float = 30) -> dict[str, Any]:
        """An activity export's status once it has ended."""
        deadline = time.monotonic() + timeout
        while True:
            doc = self.client.get(f"/apps/{self.app_id}/activity_exports/{export_id}").json()
            if doc["state"] not in ("queued", "running"):
                assert doc["state"] == "ready", doc
                return dict(doc)
            assert time.monotonic() < deadline, f"activity export not ready in {timeout} s"
            time.sleep(0.05)

    def fetch(self, url: str, timeout: float = 30) -> bytes:
        """The file at a URL handed out, once it is served: msgtrail's own route (in
        process) or the S3 store's presigned URL."""
        own = self.settings.resolved_public_url()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if url.startswith(own):
                r = self.client.get(urlparse(url).path, follow_redirects=False)
                if r.status_code == 307:  # S3: to the store's own presigned URL
                    r = httpx.get(r.headers["location"])
            else:
                r = httpx.get(url, follow_redirects=True)
            if r.status_code == 200:
                return r.content
            assert r.status_code in (403, 404), r.text
            time.sleep(0.05)
        raise AssertionError(f"{url} not served within {timeout} s")


@pytest.fixture
def api(tmp_path, backend: Embedded | Scale,
        monkeypatch: pytest.MonkeyPatch) -> Iterator[InProcess]:
    env = backend.provision(tmp_path)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    settings = Settings(data_dir=tmp_path, poll_interval=0.05)
    engine = make_engine(settings.resolved_database_url(), 1)
    upgrade(engine)
    with engine.begin() as conn:
        app, key = apps.create_app(conn, "in-process")
    try:
        fastapi_app = create_app(settings, engine, workers=1)
        with TestClient(served(fastapi_app),
                        headers={"Authorization": f"Key {key}"}) as client:
            yield InProcess(client, app.app_id, key, engine, settings,
                            fastapi_app.state.service)
    finally:
        engine.dispose()
        backend.release(env)
