"""Who is calling: the app behind the request's API key, checked against app_id."""

from __future__ import annotations

import uuid

from fastapi import Request

from msgtrail.apps import App, authenticate
from msgtrail.errors import BadRequest, NotFound, Unauthorized

_SCHEMES = ("key", "bearer", "basic")


def api_key(request: Request) -> str:
    header = request.headers.get("authorization", "").strip()
    scheme, _, value = header.partition(" ")
    if scheme.lower() not in _SCHEMES or not value.strip():
        raise Unauthorized("Missing or invalid REST API key for the app.")
    return value.strip()


def require_uuid(value: str | None, name: str) -> str:
    if not value:
        raise BadRequest(f"{name} is required (a UUID)")
    try:
        return str(uuid.UUID(value))
    except ValueError:
        raise BadRequest(f"{name}: {value!r} is not a valid UUID") from None


def require_app(request: Request, app_id: str | None) -> App:
    """The caller's app. A key never reaches another app: a foreign app_id is answered
    exactly like one that does not exist."""
    key = api_key(request)
    with request.app.state.engine.connect() as conn:
        app = authenticate(conn, key)
        conn.rollback()
    if app is None:
        raise Unauthorized("Missing or invalid REST API key for the app.")
    wanted = require_uuid(app_id, "app_id")
    if wanted != app.app_id:
        raise NotFound(f"No app with id {wanted}")
    return app
