"""Every request gets an id: the caller's `X-Request-ID` when it is a sane one, else a
new one. It is returned as `X-Request-ID`, carried by every line logged while the
request runs, and by the request's own line (`msgtrail.access`): method, path, status
and time. Query strings are not logged, and neither is an export file's token."""

from __future__ import annotations

import logging
import os
import re
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from msgtrail.runtime import logs, metrics

access = logging.getLogger("msgtrail.access")

_SANE_ID = re.compile(rb"[A-Za-z0-9._:-]{1,64}")
# A download URL's token is what grants the file (see msgtrail.web.api.files).
_TOKEN = re.compile(r"^(/exports/)[^/]+")


# A request taking this long is logged whatever its status (see RequestLog).
SLOW_SECONDS = 1.0


class _Ids:
    """Request ids: random, drawn from one `os.urandom` read per 256 of them. A uuid4
    per request (a getrandom call each) took 9% of the event loop's time on
    single-event webhooks here; a counter would have told every caller how busy the
    service is."""

    PER_READ = 256

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.pool = b""
        self.at = 0

    def next(self) -> str:
        if self.at >= len(self.pool):
            self.pool, self.at = os.urandom(16 * self.PER_READ), 0
        start = self.at
        self.at += 16
        return self.pool[start:start + 16].hex()


_ids = _Ids()
# A forked process must not repeat the ids its parent has yet to give.
os.register_at_fork(after_in_child=_ids.reset)


class RequestLog:
    """`all`: a line for every request; `errors`: only for those answered 4xx or 5xx,
    or slower than SLOW_SECONDS. A line per request cost single-event webhooks a fifth
    of their rate (3,387-3,506 against 4,199-4,577 a second, bench/webhooks.py)."""

    def __init__(self, app: ASGIApp, requests: str = "errors") -> None:
        self.app = app
        self.every = requests == "all"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = dict(scope["headers"]).get(b"x-request-id", b"")
        request_id = given.decode() if _SANE_ID.fullmatch(given) else _ids.next()
        status = 500  # unless a response starts
        started = time.perf_counter()

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", []),
                                      (b"x-request-id", request_id.encode())]
            await send(message)

        with logs.context(request_id=request_id):
            try:
                await self.app(scope, receive, send_with_id)
            finally:
                took = time.perf_counter() - started
                if status >= 400:
                    metrics.HTTP_ERRORS.labels(str(status)).inc()
                if self.every or status >= 400 or took >= SLOW_SECONDS:
                    _log(scope, status, took)


def _log(scope: Scope, status: int, took: float) -> None:
    path = _TOKEN.sub(r"\1***", scope["path"])
    ms = round(took * 1000, 1)
    access.info("%s %s %d %.1f ms", scope["method"], path, status, ms,
                extra={"method": scope["method"], "path": path, "status": status, "ms": ms})
