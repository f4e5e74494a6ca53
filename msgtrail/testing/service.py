"""`msgtrail serve` as a process on a free port, on a fresh database and store of a
configuration, driven over HTTP; the CLI run as a user runs it."""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from msgtrail.testing.backends import Embedded, Scale

MSGTRAIL = [sys.executable, "-m", "msgtrail"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_cli(data_dir: Path, *args: str, env: dict[str, str] | None = None) -> str:
    """Run `msgtrail ARGS --data-dir DIR` and return stdout; fails the test on error."""
    result = subprocess.run([*MSGTRAIL, *args, "--data-dir", str(data_dir)],
                            capture_output=True, text=True, timeout=120,
                            env={**os.environ, **(env or {})})
    assert result.returncode == 0, result.stderr
    return result.stdout


@dataclass
class AppCreds:
    app_id: str
    api_key: str
    account: str


@dataclass
class Server:
    base_url: str
    data_dir: Path
    process: subprocess.Popen
    backend: Embedded | Scale = field(default_factory=Embedded)
    # What the backend provisioned (database, bucket): every process of this server
    # (CLI calls, separate workers) gets it.
    env: dict[str, str] = field(default_factory=dict)
    # False for a peer: another API process on a server's database and store.
    owner: bool = True

    @property
    def database_url(self) -> str:
        return (self.env.get("MSGTRAIL_DATABASE_URL")
                or f"sqlite:///{self.data_dir / 'msgtrail.db'}")

    @contextmanager
    def database(self) -> Iterator[Any]:
        """An engine on this server's database, behind its back (a test that reads what
        it stored, or breaks it)."""
        from msgtrail.db.engine import make_engine

        engine = make_engine(self.database_url)
        try:
            yield engine
        finally:
            engine.dispose()

    def create_app(self, name: str = "app", account: str = "default") -> AppCreds:
        """A new app and its key, written to the server's database as `msgtrail apps
        create` writes them, but from this process: a command per test cost a second
        of CPU each (tests/acceptance/test_cli.py runs the command itself)."""
        from msgtrail import apps
        from msgtrail.db.engine import make_engine

        url = self.env.get("MSGTRAIL_DATABASE_URL") or (
            f"sqlite:///{(self.data_dir / 'msgtrail.db').resolve()}")
        engine = make_engine(url)
        try:
            with engine.begin() as conn:
                app, key = apps.create_app(conn, name, account)
        finally:
            engine.dispose()
        return AppCreds(app.app_id, key, account)

    def client(self, creds: AppCreds | None = None) -> httpx.Client:
        headers = {"Authorization": f"Key {creds.api_key}"} if creds else {}
        return httpx.Client(base_url=self.base_url, headers=headers, timeout=60)

    def sdk(self, creds: AppCreds) -> Any:
        """OneSignal's official Python SDK, pointed at this server."""
        import onesignal
        from onesignal.api import default_api

        config = onesignal.Configuration(host=self.base_url, rest_api_key=creds.api_key)
        return default_api.DefaultApi(onesignal.ApiClient(config))


def start_server(data_dir: Path, *extra: str, env: dict[str, str] | None = None,
                 backend: Embedded | Scale | None = None, peer_of: Server | None = None) -> Server:
    """`msgtrail serve` on a free port, on a fresh database and store of `backend`, or
    on those of `peer_of` (a second API process of the same deployment)."""
    backend = peer_of.backend if peer_of else backend or Embedded()
    data_dir = peer_of.data_dir if peer_of else data_dir
    data_dir.mkdir(parents=True, exist_ok=True)
    provisioned = peer_of.env if peer_of else backend.provision(data_dir)
    env = {**provisioned, **(env or {})}
    port = free_port()
    log = open(data_dir / f"serve-{port}.log", "w")  # noqa: SIM115 - the process's log
    process = subprocess.Popen(
        [*MSGTRAIL, "serve", "--port", str(port), "--data-dir", str(data_dir), *extra],
        stdout=log, stderr=subprocess.STDOUT, env={**os.environ, **env})
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError((data_dir / f"serve-{port}.log").read_text())
        try:
            if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                return Server(base, data_dir, process, backend, env, owner=peer_of is None)
        except httpx.TransportError:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError("msgtrail did not start in 30 s")


def stop_server(server: Server) -> None:
    server.process.send_signal(signal.SIGTERM)
    try:
        server.process.wait(15)
    except subprocess.TimeoutExpired:
        server.process.kill()
        server.process.wait()
    if server.owner:
        server.backend.release(server.env)


@contextmanager
def bench_service(args: argparse.Namespace) -> Iterator[tuple[Server, dict[str, str]]]:
    """`msgtrail serve` for a benchmark, where its arguments say (add_bench_arguments;
    `args.processes` API processes), with one app: the server and the app's
    credentials, on a throwaway data dir, torn down after."""
    from msgtrail.testing.backends import bench_env, bench_teardown

    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp)
        env, scale = bench_env(args, data_dir)
        server = start_server(data_dir, "--processes", str(args.processes), env=env)
        try:
            yield server, json.loads(run_cli(data_dir, "apps", "create", "--name", "bench",
                                             "--json", env=server.env))
        finally:
            stop_server(server)
            bench_teardown(env, scale)


def wait_idle(pid: int, quiet: float = 1.0, limit: float = 120) -> float:
    """Wait until the process has used under 5% of a core for `quiet` seconds (its
    background work done); returns the seconds waited."""
    start = time.monotonic()
    ticks = os.sysconf("SC_CLK_TCK")

    def cpu() -> float:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / ticks

    while time.monotonic() - start < limit:
        before = cpu()
        time.sleep(quiet)
        if cpu() - before < 0.05 * quiet:
            break
    return time.monotonic() - start - quiet


def peak_rss_mb(pid: int) -> float:
    """The highest resident memory a process has had (VmHWM), in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM")


def core_loop_seconds() -> float:
    """This machine's single-core speed today: a fixed Python loop (10,000,000
    additions), the best of three. Benchmarks print it beside their figures, whose
    absolute values move with it from day to day."""
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        total = 0
        for i in range(10_000_000):
            total += i
        best = min(best, time.perf_counter() - started)
    return round(best, 3)
