"""A small HTTP server that answers like OneSignal's export API, with faults on cue:
what msgtrail itself never produces (429 storms, 503 without Retry-After, dropped
connections, corrupt files) but a client must survive."""

from __future__ import annotations

import json
import socket
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

NO_SUCH_KEY = (b"<Error><Code>NoSuchKey</Code>"
               b"<Message>The specified key does not exist.</Message></Error>")
FILE_PATH = "/csv_exports/app/events_audience-activity-msg-push-2026-11-23T10-00-00Z.csv.gz"


@dataclass
class Script:
    """What the server answers, in order; the last entry repeats.

    `posts`: (status, headers, body) for each export request. `gets`: one action per GET
    of the file: "404", "503", "full", "drop" (half the bytes, then the connection
    closes), "corrupt", "slow" (the file in small pieces, slowly). `status`: msgtrail's
    job status, answered to every GET of a status path."""

    data: bytes
    posts: list[tuple[int, dict[str, str], dict]] = field(default_factory=list)
    gets: list[str] = field(default_factory=lambda: ["full"])
    seen: list[tuple[str, str, dict[str, str]]] = field(default_factory=list)
    status: dict | None = None  # type: ignore[type-arg]

    def next(self, items: list) -> object:  # type: ignore[type-arg]
        return items.pop(0) if len(items) > 1 else items[0]


class FaultServer:
    def __init__(self, script: Script) -> None:
        self.script = script
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def _send(self, status: int, body: bytes, headers: dict[str, str]) -> None:
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                outer.script.seen.append(("POST", self.path, dict(self.headers)))
                status, headers, doc = outer.script.next(outer.script.posts)  # type: ignore[misc]
                body = json.dumps(doc).encode()
                self._send(status, body, {"Content-Type": "application/json", **headers})

            def do_GET(self) -> None:
                outer.script.seen.append(("GET", self.path, dict(self.headers)))
                if "/export_events/" in self.path and outer.script.status is not None:
                    self._send(200, json.dumps(outer.script.status).encode(),
                               {"Content-Type": "application/json"})
                    return
                action = outer.script.next(outer.script.gets)
                data = outer.script.data
                if action == "404":
                    self._send(404, NO_SUCH_KEY, {"Content-Type": "application/xml"})
                elif action == "503":
                    self._send(503, b"", {})
                elif action == "416" and self.headers.get("Range"):
                    # The file was written again: what the client holds is no prefix.
                    self._send(416, b"", {"Content-Range": f"bytes */{len(data)}"})
                elif action == "corrupt":
                    self._send(200, data[: len(data) // 2] + b"\x00" * 64, {})
                elif action == "drop":
                    self.send_response(200)
                    self.send_header("Content-Length", str(len(data)))
                    self.send_header("Accept-Ranges", "bytes")
                    self.end_headers()
                    self.wfile.write(data[: len(data) // 2])
                    self.wfile.flush()
                    self.connection.shutdown(socket.SHUT_RDWR)
                    self.close_connection = True
                elif action == "slow":
                    self.send_response(200)
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    step = max(len(data) // 10, 1)
                    for i in range(0, len(data), step):
                        self.wfile.write(data[i:i + step])
                        self.wfile.flush()
                        time.sleep(0.1)
                else:  # full, honouring Range
                    start = 0
                    rng = self.headers.get("Range", "")
                    if rng.startswith("bytes=") and rng.endswith("-"):
                        start = int(rng[6:-1])
                    headers = {"Accept-Ranges": "bytes"}
                    if start:
                        headers["Content-Range"] = f"bytes {start}-{len(data) - 1}/{len(data)}"
                        self._send(206, data[start:], headers)
                    else:
                        self._send(200, data, headers)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base_url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.file_url = self.base_url + FILE_PATH
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> FaultServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def count(self, method: str) -> int:
        return sum(1 for m, _p, _h in self.script.seen if m == method)
