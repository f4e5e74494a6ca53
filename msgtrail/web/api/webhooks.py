"""Provider webhooks in, and the events msgtrail could not attribute, out."""

from __future__ import annotations

import asyncio
import re
import threading
from collections.abc import Callable
from typing import Any, Literal
from urllib.parse import parse_qsl

import httpx
from cachetools import TTLCache
from fastapi import APIRouter, FastAPI, Path, Query, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import JSONResponse, Response
from starlette.types import Receive, Scope, Send

from msgtrail import apps
from msgtrail.apps import App
from msgtrail.clock import now
from msgtrail.errors import NotFound, Unavailable
from msgtrail.ingest import connections, intake
from msgtrail.ingest.connectors import SOURCES
from msgtrail.ingest.connectors.base import Context, WebhookRequest
from msgtrail.ingest.intake import Delivery
from msgtrail.web.api.auth import require_app, require_uuid
from msgtrail.web.api.events import read_body
from msgtrail.web.api.notifications import MAX_OFFSET
from msgtrail.web.api.openapi import WEBHOOK_BODY, errors

router = APIRouter(tags=["webhooks"])

Source = Literal["onesignal", "sendgrid", "ses", "twilio", "postmark", "mailgun"]
# The path takes any name, so that an unknown one is answered 404 by the route itself;
# the document still lists the sources there are.
SOURCE_PATH = Path(description="The provider", json_schema_extra={"enum": sorted(SOURCES)})


def _fetch(url: str) -> bytes:
    """GET for SNS (certificates, subscription confirmations); the host was checked."""
    try:
        answer = httpx.get(url, timeout=10, follow_redirects=False)
        answer.raise_for_status()
    except httpx.HTTPError as exc:
        raise Unavailable(f"could not reach {url.split('?')[0]} ({exc})") from None
    return answer.content


class Lookups:
    """Who an app is, its source's credential and whose API key a request carries,
    remembered for `seconds`: the database is not asked on every event of a provider
    in full flow. So a disconnect, a re-key or a revoked key takes effect within that
    time in every API process (MSGTRAIL_WEBHOOK_CACHE_SECONDS)."""

    def __init__(self, engine: Any, vault: Any, seconds: float) -> None:
        self._engine, self._vault = engine, vault
        self._connections: TTLCache[tuple[str, str], tuple[App, dict[str, Any]]] = TTLCache(
            maxsize=4096, ttl=seconds)
        self._keys: TTLCache[str, str | None] = TTLCache(maxsize=4096, ttl=seconds)
        self._lock = threading.Lock()

    def known(self, app_id: str, source: str, key: str | None) -> bool:
        with self._lock:
            return (app_id, source) in self._connections and (
                key is None or apps.hash_key(key) in self._keys)

    def connection(self, app_id: str, source: str) -> tuple[App, dict[str, Any]]:
        with self._lock:
            found = self._connections.get((app_id, source))
        if found is None:
            with self._engine.connect() as conn:
                app = apps.get_app(conn, require_uuid(app_id, "app_id"))
                found = (app, connections.credential(conn, self._vault, app, source))
                conn.rollback()
            with self._lock:
                self._connections[(app_id, source)] = found
        return found

    def key_owner(self, key: str) -> str | None:
        digest = apps.hash_key(key)
        with self._lock:
            if digest in self._keys:
                return self._keys[digest]
        with self._engine.connect() as conn:
            owner = apps.authenticate(conn, key)
            conn.rollback()
        with self._lock:
            self._keys[digest] = None if owner is None else owner.app_id
        return None if owner is None else owner.app_id


def _bearer(req: WebhookRequest) -> str | None:
    """The API key of a OneSignal Event Streams request (other sources have none)."""
    value = req.headers.get("authorization", "").strip().partition(" ")[2].strip()
    return value or None


def _prepare(request: Request, source: str, app_id: str, req: WebhookRequest) -> Delivery:
    """Authenticate the request as its provider signs it, then read its events."""
    state = request.app.state
    module = SOURCES[source]
    app, credential = state.lookups.connection(app_id, source)
    settings = state.settings
    ctx = Context(app_id=app.app_id, max_age_seconds=settings.replay_window(source),
                  sns_host_pattern=settings.sns_host_pattern, key_owner=state.lookups.key_owner,
                  fetch=_fetch, sns_ca_bundle=settings.sns_ca_bundle,
                  sns_issuer_pattern=settings.sns_issuer_pattern)
    module.verify(req, credential, ctx)
    return Delivery(app, source, module.parse(req, ctx), req.now)


@router.post("/webhooks/{source}/{app_id}", summary="Receive a provider's webhook",
             responses=errors(400, 401, 403, 404, 413, 503),
             openapi_extra={"requestBody": WEBHOOK_BODY})
async def receive_webhook(request: Request, app_id: str,
                          source: str = SOURCE_PATH) -> dict[str, int]:
    """Events as the provider sends them, checked as it signs them (see docs/connectors.md,
    table per source). Answers once they are durable: `{"accepted": n, "rejected": m}`,
    where rejected events are kept among the app's webhook rejections."""
    settings = request.app.state.settings
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
    key = _bearer(req) if source == "onesignal" else None
    if source != "ses" and request.app.state.lookups.known(app_id, source, key):
        # Everything needed is in memory and checking costs microseconds: no thread hop.
        delivery = _prepare(request, source, app_id, req)
    else:
        # The database (or SNS, for a certificate or a confirmation) may be asked.
        delivery = await run_in_threadpool(_prepare, request, source, app_id, req)
    if not delivery.events:
        return {"accepted": 0, "rejected": 0}
    outcome = await asyncio.wrap_future(request.app.state.intake.submit(delivery))
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
                await receive_webhook(request, found.group(2), found.group(1)))
        except Exception as exc:  # noqa: BLE001 - every error answers in the envelope
            response = self.on_error(exc)
        await response(scope, receive, send)


@router.get("/apps/{app_id}/webhook_rejections", summary="Webhook events not recorded",
            responses=errors(400, 401, 404, 503))
def list_rejections(request: Request, app_id: str, source: Source | None = None,
                    limit: int = Query(50, ge=1, le=1000),
                    offset: int = Query(0, ge=0, le=MAX_OFFSET)) -> dict[str, Any]:
    """Provider events that could not be attributed to a message and recipient (no ids
    in the metadata, an unknown message, a channel mismatch...), newest first."""
    app = require_app(request, app_id)
    return intake.rejections(request.app.state.engine, app.pk, source, limit, offset)
