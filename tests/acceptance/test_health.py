"""/livez, /readyz and /healthz of a real `msgtrail serve`, on each backend."""

from __future__ import annotations

import httpx

from msgtrail.testing.service import start_server, stop_server


def test_ready_only_while_the_store_can_be_written_live_throughout(tmp_path, backend) -> None:
    srv = start_server(tmp_path, backend=backend)
    try:
        with httpx.Client(base_url=srv.base_url) as client:
            assert client.get("/livez").json() == {"status": "ok"}
            assert client.get("/readyz").json() == {"status": "ready"}
            backend.break_storage(srv.env, tmp_path)
            r = client.get("/readyz")
            assert r.status_code == 503
            assert r.json() == {"status": "unavailable", "errors": ["storage: cannot be written"]}
            assert int(r.headers["Retry-After"]) >= 1
            assert client.get("/livez").status_code == 200  # not a reason to restart it
            assert client.get("/healthz").json() == {"status": "ok"}  # as it always was
            backend.mend_storage(srv.env, tmp_path)
            assert client.get("/readyz").json() == {"status": "ready"}
    finally:
        stop_server(srv)
