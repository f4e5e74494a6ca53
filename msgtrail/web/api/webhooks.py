"""Provider webhooks in, and the events msgtrail could not attribute, out."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, Literal
from urllib.parse import parse_qsl

from fastapi import APIRouter, FastAPI, Path, Query, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import JSONResponse, Response
from starlette.types import Receive, Scope, Send

from msgtrail.clock import now
from msgtrail.errors import NotFound
from msgtrail.ingest.connectors import SOURCES
from msgtrail.ingest.connectors.base import WebhookRequest
from msgtrail.web.api.notifications import MAX_OFFSET
from msgtrail.web.api.openapi import WEBHOOK_BODY, errors
from msgtrail.web.body import read_body
from msgtrail.web.deps import Svc, caller, service

router = APIRouter(tags=["webhooks"])

Source = Literal["onesignal", "sendgrid", "ses", "twilio", "postmark", "mailgun"]
# The path takes any name, so that an unknown one is answered 404 by the route itself;
# the document still lists the sources there are.
SOURCE_PATH = Path(description="The provider", json_schema_extra={"enum": sorted(SOURCES)})


@router.post("/webhooks/{source}/{app_id}", summary="Receive a provider's webhook",
             responses=errors(400, 401, 403, 404, 413, 503),
             openapi_extra={"requestBody": WEBHOOK_BODY})
async def receive_webhook(request: Request, svc: Svc, app_id: str,
                          source: str = SOURCE_PATH) -> dict[str, int]:
    """Events as the provider sends them, checked as it signs them (see docs/connectors.md,
    table per source). Answers once they are durable: `{"accepted": n, "rejected": m}`,
    where rejected events are kept among the app's webhook rejections."""
    settings = svc.settings
    if source not in SOURCES:
        raise NotFound(f"No webhook source {source!r}")
    body = await read_body(request, settings.max_request_bytes)
    # From the ASGI scope itself: building request.url costs more than the check.
    query = request.scope["query_string"].decode("latin-1")
    req = WebhookRequest(
        body=body, headers=dict(request.headers.items()),  # names come lower-cased
        url=settings.resolved_public_url() + request.scope["path"] + (
            f"?{query}" if query else ""),
        query=dict(parse_qsl(query)) if query else {}, now=now())
    if svc.webhook_cached(app_id, source, req):
        # Everything needed is in memory and checking costs microseconds: no thread hop.
        delivery = svc.webhook_delivery(source, app_id, req)
    else:
        # The database (or SNS, for a certificate or a confirmation) may be asked.
        delivery = await run_in_threadpool(svc.webhook_delivery, source, app_id, req)
    if not delivery.events:
        return {"accepted": 0, "rejected": 0}
    outcome = await svc.record(delivery)
    return {"accepted": outcome.accepted, "rejected": outcome.rejected}


# At the root and under /api/v1, like every other route.
_PATH = re.compile(r"(?:/api/v1)?/webhooks/([^/]+)/([^/]+)")


class FastPath:
    """Provider webhooks straight to `receive_webhook`, past FastAPI's routing (some
    seventy routes), dependency solving and middleware: on one core that stack cost
    more than the rest of a single-event request (bench/webhooks.py, docs/benchmarks.md). The
    route stays declared above for the OpenAPI document; both run the same function."""

    def __init__(self, app: FastAPI, on_error: Callable[[Exception], Response]) -> None:
        self.app, self.on_error = app, on_error

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        found = (_PATH.fullmatch(scope["path"]) if scope["type"] == "http"
                 and scope["method"] == "POST" else None)
        if found is None:
            await self.app(scope, receive, send)
            return
        scope["app"] = self.app  # what request.app is, as under FastAPI
        request = Request(scope, receive)
        try:
            response: Response = JSONResponse(
                await receive_webhook(request, await service(request), found.group(2),
                                      found.group(1)))
        except Exception as exc:  # noqa: BLE001 - every error answers in the envelope
            response = self.on_error(exc)
        await response(scope, receive, send)


@router.get("/apps/{app_id}/webhook_rejections", summary="Webhook events not recorded",
            responses=errors(400, 401, 404, 503))
def list_rejections(request: Request, svc: Svc, app_id: str, source: Source | None = None,
                    limit: int = Query(50, ge=1, le=1000),
                    offset: int = Query(0, ge=0, le=MAX_OFFSET)) -> dict[str, Any]:
    """Provider events that could not be attributed to a message and recipient (no ids
    in the metadata, an unknown message, a channel mismatch...), newest first."""
    return svc.rejections(caller(request, svc, app_id), source, limit, offset)
