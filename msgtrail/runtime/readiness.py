"""Readiness, asked of `serve` at `/readyz` and of `msgtrail worker` at its probe port:
the database answers and is at this code's migrations, the file store can be written,
and every worker thread runs and renews the lease of the job it holds.

`msgtrail worker --probe-port N` answers `/livez`, `/readyz` and `/metrics` over
plain HTTP (the standard library's server on a thread: a worker has no web stack
running), so that an orchestrator can probe a process that serves no API.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from sqlalchemy import Engine, literal, select

from msgtrail.db.engine import migrations_behind
from msgtrail.files.base import BlobStore

log = logging.getLogger("msgtrail.runtime.readiness")


def database_error(engine: Engine) -> str | None:
    """Why the database does not answer, or None when it does."""
    try:
        with engine.connect() as conn:
            conn.execute(select(literal(1)))
            conn.rollback()
    except Exception as exc:  # noqa: BLE001 - any failure to reach it is the answer
        return str(exc)
    return None


def problems(engine: Engine, store: BlobStore, stalled: list[str]) -> list[str]:
    """Why this process should not get work (empty when ready); `stalled` are its
    worker threads' own complaints."""
    database = database_error(engine)
    found = [f"database: {database}"] if database is not None else []
    if database is None:
        behind = migrations_behind(engine)
        found += [f"migrations: {behind}"] if behind is not None else []
    if not store.healthy():
        found.append("storage: cannot be written")
    return found + [f"worker {w}" for w in stalled]


def serve_probes(port: int, host: str, not_ready: Callable[[], list[str]],
                 metrics_page: Callable[[], tuple[bytes, str]]) -> ThreadingHTTPServer:
    """Answer /livez, /readyz and /metrics on `host:port`, on a daemon thread."""

    class Probes(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            if path == "/livez":
                self._answer(200, b'{"status": "ok"}', "application/json")
            elif path == "/readyz":
                found = not_ready()
                body = {"status": "unavailable", "errors": found} if found else {
                    "status": "ready"}
                self._answer(503 if found else 200, json.dumps(body).encode(),
                             "application/json", retry=bool(found))
            elif path == "/metrics":
                self._answer(200, *metrics_page())
            else:
                self._answer(404, b'{"errors": ["Not Found"]}', "application/json")

        def _answer(self, status: int, body: bytes, content_type: str,
                    retry: bool = False) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            if retry:
                self.send_header("Retry-After", "5")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_: object) -> None:
            """Probes every few seconds are not worth a line each."""

    server = ThreadingHTTPServer((host, port), Probes)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="probes", daemon=True).start()
    log.info("probes on http://%s:%s (/livez, /readyz, /metrics)", host, server.server_port)
    return server
