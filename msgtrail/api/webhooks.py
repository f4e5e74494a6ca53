"""Provider webhooks in, and the events msgtrail could not attribute, out."""

from __future__ import annotations

import asyncio
from typing import Any, Literal

import httpx
from fastapi import APIRouter, Query, Request
from starlette.concurrency import run_in_threadpool

from msgtrail import apps, connections, intake
from msgtrail.api.auth import require_app, require_uuid
from msgtrail.api.events import read_body
from msgtrail.api.notifications import MAX_OFFSET
from msgtrail.api.openapi import errors
from msgtrail.clock import now
from msgtrail.connectors import SOURCES
from msgtrail.connectors.base import Context, WebhookRequest
from msgtrail.errors import NotFound, Unavailable
from msgtrail.intake import Delivery

router = APIRouter(tags=["webhooks"])

Source = Literal["onesignal", "sendgrid", "ses", "twilio", "postmark", "mailgun"]


def _fetch(url: str) -> bytes:
    """GET for SNS (certificates, subscription confirmations); the host was checked."""
    try:
        answer = httpx.get(url, timeout=10, follow_redirects=False)
        answer.raise_for_status()
    except httpx.HTTPError as exc:
        raise Unavailable(f"could not reach {url.split('?')[0]} ({exc})") from None
    return answer.content


def _prepare(request: Request, source: str, app_id: str, req: WebhookRequest) -> Delivery:
    """Authenticate the request as its provider signs it, then read its events."""
    state = request.app.state
    module = SOURCES[source]
    with state.engine.connect() as conn:
        app = apps.get_app(conn, require_uuid(app_id, "app_id"))
        credential = connections.credential(conn, state.vault, app, source)
        conn.rollback()

    def key_owner(key: str) -> str | None:
        with state.engine.connect() as conn:
            owner = apps.authenticate(conn, key)
            conn.rollback()
        return None if owner is None else owner.app_id

    settings = state.settings
    ctx = Context(app_id=app.app_id, max_age_seconds=settings.mailgun_max_age_seconds,
                  sns_host_pattern=settings.sns_host_pattern, key_owner=key_owner,
                  fetch=_fetch)
    module.verify(req, credential, ctx)
    return Delivery(app, source, module.parse(req, ctx), req.now)


@router.post("/webhooks/{source}/{app_id}", summary="Receive a provider's webhook",
             responses=errors(400, 401, 403, 404, 413, 503))
async def receive_webhook(request: Request, source: Source, app_id: str) -> dict[str, int]:
    """Events as the provider sends them, checked as it signs them (see the README's
    table per source). Answers once they are durable: `{"accepted": n, "rejected": m}`,
    where rejected events are kept among the app's webhook rejections."""
    settings = request.app.state.settings
    if source not in SOURCES:
        raise NotFound(f"No webhook source {source!r}")
    body = await read_body(request, settings.max_request_bytes)
    query = f"?{request.url.query}" if request.url.query else ""
    req = WebhookRequest(
        body=body, headers={k.lower(): v for k, v in request.headers.items()},
        url=settings.resolved_public_url() + request.url.path + query,
        query=dict(request.query_params), now=now())
    delivery = await run_in_threadpool(_prepare, request, source, app_id, req)
    if not delivery.events:
        return {"accepted": 0, "rejected": 0}
    outcome = await asyncio.wrap_future(request.app.state.intake.submit(delivery))
    return {"accepted": outcome.accepted, "rejected": outcome.rejected}


@router.get("/apps/{app_id}/webhook_rejections", summary="Webhook events not recorded",
            responses=errors(400, 401, 404, 503))
def list_rejections(request: Request, app_id: str, source: Source | None = None,
                    limit: int = Query(50, ge=1, le=1000),
                    offset: int = Query(0, ge=0, le=MAX_OFFSET)) -> dict[str, Any]:
    """Provider events that could not be attributed to a message and recipient (no ids
    in the metadata, an unknown message, a channel mismatch...), newest first."""
    app = require_app(request, app_id)
    return intake.rejections(request.app.state.engine, app.pk, source, limit, offset)
