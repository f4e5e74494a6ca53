"""Every request gets an id: the caller's `X-Request-ID` when it is a sane one, else a
new one. It is returned as `X-Request-ID`, carried by every line logged while the
request runs, and by the request's own line (`msgtrail.access`): method, path, status
and time. Query strings are not logged, and neither is an export file's token."""

from __future__ import annotations

import logging
import re
import time
import uuid

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from msgtrail.runtime import logs

access = logging.getLogger("msgtrail.access")

_SANE_ID = re.compile(rb"[A-Za-z0-9._:-]{1,64}")
# A download URL's token is what grants the file (see msgtrail.web.api.files).
_TOKEN = re.compile(r"^(/exports/)[^/]+")


class RequestLog:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = dict(scope["headers"]).get(b"x-request-id", b"")
        request_id = given.decode() if _SANE_ID.fullmatch(given) else uuid.uuid4().hex
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
                path = _TOKEN.sub(r"\1***", scope["path"])
                ms = round((time.perf_counter() - started) * 1000, 1)
                access.info("%s %s %d %.1f ms", scope["method"], path, status, ms, extra={
                    "method": scope["method"], "path": path, "status": status, "ms": ms})
