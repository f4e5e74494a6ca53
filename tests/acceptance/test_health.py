"""/livez, /readyz and /healthz of a real `msgtrail serve`, on each backend."""

from __future__ import annotations

import signal

import httpx
import pytest

from msgtrail.testing.service import free_port, start_server, stop_server
from tests.helpers import stop_processes, wait_for, worker_process


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


def test_a_worker_process_answers_its_probes(tmp_path, backend) -> None:
    """`msgtrail worker --probe-port`: the same readiness as `serve`, its metrics, and
    not ready once it is stopping."""
    srv = start_server(tmp_path, "--workers", "0", backend=backend)
    port = free_port()
    process = worker_process(srv, "probed", MSGTRAIL_PROBE_PORT=str(port))
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: _answers(f"{base}/livez"))
        assert httpx.get(f"{base}/livez").json() == {"status": "ok"}
        assert httpx.get(f"{base}/readyz").json() == {"status": "ready"}
        assert "msgtrail_export_jobs" in httpx.get(f"{base}/metrics").text
        backend.break_storage(srv.env, tmp_path)
        r = httpx.get(f"{base}/readyz")
        assert r.status_code == 503 and r.headers["Retry-After"] == "5"
        assert r.json()["errors"] == ["storage: cannot be written"]
        backend.mend_storage(srv.env, tmp_path)
        assert httpx.get(f"{base}/readyz").status_code == 200
        process.send_signal(signal.SIGSTOP)  # a stuck process: the probe cannot answer
        try:
            with pytest.raises(httpx.TimeoutException):
                httpx.get(f"{base}/livez", timeout=1)
        finally:
            process.send_signal(signal.SIGCONT)
    finally:
        stop_processes([process])
        stop_server(srv)


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1).status_code == 200
    except httpx.TransportError:
        return False
