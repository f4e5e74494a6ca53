"""The FastAPI dependencies every route and page is written with: the service, and the
app an API key opens."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from msgtrail.apps import App
from msgtrail.audit import Actor, api_actor
from msgtrail.errors import Unauthorized
from msgtrail.service import BAD_KEY, Service

_SCHEMES = ("key", "bearer", "basic")


async def service(request: Request) -> Service:
    """The application's service (async: FastAPI resolves it without a thread hop)."""
    found: Service = request.app.state.service
    return found


def api_key(request: Request) -> str:
    """The REST API key of the request's Authorization header (Key, Bearer or Basic)."""
    header = request.headers.get("authorization", "").strip()
    scheme, _, value = header.partition(" ")
    if scheme.lower() not in _SCHEMES or not value.strip():
        raise Unauthorized(BAD_KEY)
    return value.strip()


def caller(request: Request, svc: Service, app_id: str | None) -> App:
    """The app the request's key opens, which must be `app_id`'s."""
    return svc.require_app(api_key(request), app_id)


def remote(request: Request) -> str | None:
    """The client's address (the proxy's, unless uvicorn trusts it to forward one)."""
    return request.client.host if request.client else None


def actor(request: Request) -> Actor:
    """Who makes an API request, for the audit trail: its address and key's prefix."""
    try:
        key: str | None = api_key(request)
    except Unauthorized:
        key = None
    return api_actor(remote(request), key)


# A route's parameter `svc: Svc` is the service.
Svc = Annotated[Service, Depends(service)]
