"""OneSignal's message endpoints: create, view one, view many."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query, Request

from msgtrail import messages
from msgtrail.api.auth import require_app, require_uuid
from msgtrail.errors import BadRequest

router = APIRouter(tags=["messages"])


@router.post("/notifications", summary="Register a message")
def create_notification(request: Request, body: dict[str, Any]) -> dict[str, Any]:
    """Records a message as OneSignal's create body describes it; msgtrail does not
    deliver it. Answers `{"id": …, "external_id": …}`."""
    app_id = body.get("app_id")
    app = require_app(request, app_id if isinstance(app_id, str) else None)
    with request.app.state.engine.begin() as conn:
        message = messages.create(conn, app, body)
    external_id = body.get("external_id")
    return {"id": message.message_id,
            "external_id": external_id if isinstance(external_id, str) else None}


@router.get("/notifications/{message_id}", summary="View a message")
def get_notification(request: Request, message_id: str,
                     app_id: str | None = None) -> dict[str, Any]:
    app = require_app(request, app_id)
    message_id = require_uuid(message_id, "message_id")
    engine = request.app.state.engine
    with engine.connect() as conn:
        message = messages.find(conn, app, message_id)
        conn.rollback()
    return messages.to_api(messages.fresh(engine, message), app)


@router.get("/notifications", summary="View messages")
def list_notifications(request: Request, app_id: str | None = None,
                       limit: int = Query(50), offset: int = Query(0),
                       kind: int | None = None) -> dict[str, Any]:
    """Newest first, OneSignal's NotificationSlice shape. `kind` is accepted and ignored:
    every message recorded here came through the API."""
    app = require_app(request, app_id)
    if not 1 <= limit <= 50:
        raise BadRequest("limit: must be between 1 and 50")
    if offset < 0:
        raise BadRequest("offset: must not be negative")
    engine = request.app.state.engine
    with engine.connect() as conn:
        total, found = messages.page(conn, app, limit, offset)
        conn.rollback()
    return {"total_count": total, "offset": offset, "limit": limit,
            "notifications": [messages.to_api(messages.fresh(engine, m), app) for m in found]}
