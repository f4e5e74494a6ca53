"""Requests that arrive while the process stops (msgtrail.runtime.shutdown): 503 with
`Retry-After`, and the connection closed, so the client goes to another process."""

from __future__ import annotations

import json

from starlette.types import ASGIApp, Receive, Scope, Send

from msgtrail.runtime.shutdown import Shutdown

RETRY_AFTER_SECONDS = 5
# Answered while draining: a liveness probe must not restart a process that is stopping.
_ALWAYS = ("/livez",)


class Drain:
    """ASGI middleware: 503 with `Retry-After` for every request once draining."""

    def __init__(self, app: ASGIApp, shutdown: Shutdown) -> None:
        self.app, self.shutdown = app, shutdown

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (scope["type"] != "http" or not self.shutdown.draining.is_set()
                or scope["path"] in _ALWAYS):
            await self.app(scope, receive, send)
            return
        body = json.dumps({"errors": ["msgtrail is stopping; retry in a few seconds "
                                      "(another process of the service may answer)"]}).encode()
        await send({"type": "http.response.start", "status": 503, "headers": [
            (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
            (b"retry-after", str(RETRY_AFTER_SECONDS).encode()), (b"connection", b"close")]})
        await send({"type": "http.response.body", "body": body})
