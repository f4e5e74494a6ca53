"""Every request gets an id: the caller's `X-Request-ID` when it is a sane one, else a
new one. It is returned as `X-Request-ID`, carried by every line logged while the
request runs, and by the request's own line (`msgtrail.access`): method, path, status
and time. Query strings are not logged, and neither is an export file's token."""

from __future__ import annotations

import itertools
import logging
import os
import re
import secrets
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
    """Request ids: unique, not secret, so a random prefix per process and a counter.
    A uuid4 per request (a getrandom call each) took 9% of the event loop's time on
    single-event webhooks here."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.prefix = secrets.token_hex(8)
        self.counter = itertools.count()

    def next(self) -> str:
        return f"{self.prefix}{next(self.counter):016x}"


_ids = _Ids()
# A forked process (`serve --processes`) must not repeat its parent's ids.
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
