"""OneSignal's message endpoints: create, view one, view many."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query, Request

from msgtrail import messages
from msgtrail.inputs import require_uuid
from msgtrail.web.api.openapi import CREATE_BODY, errors
from msgtrail.web.deps import Svc, caller

router = APIRouter(tags=["messages"])

# The largest offset a page may start at: every database takes it (a larger integer
# overflowed PostgreSQL's bigint and answered 500), and no app has that many messages.
MAX_OFFSET = 2**31 - 1


@router.post("/notifications", summary="Register a message",
             responses=errors(400, 401, 404, 503), openapi_extra={"requestBody": CREATE_BODY})
def create_notification(request: Request, svc: Svc, body: dict[str, Any]) -> dict[str, Any]:
    """Records a message as OneSignal's create body describes it; msgtrail does not
    deliver it. Answers `{"id": …, "external_id": …}`."""
    app_id = body.get("app_id")
    app = caller(request, svc, app_id if isinstance(app_id, str) else None)
    message = svc.create_message(app, body)
    external_id = body.get("external_id")
    return {"id": message.message_id,
            "external_id": external_id if isinstance(external_id, str) else None}


@router.get("/notifications/{message_id}", summary="View a message",
            responses=errors(400, 401, 404, 503))
def get_notification(request: Request, svc: Svc, message_id: str,
                     app_id: str | None = None) -> dict[str, Any]:
    app = caller(request, svc, app_id)
    return messages.to_api(svc.message(app, require_uuid(message_id, "message_id")), app)


@router.get("/notifications", summary="View messages", responses=errors(400, 401, 404, 503))
def list_notifications(request: Request, svc: Svc, app_id: str | None = None,
                       limit: int = Query(50, ge=1, le=50),
                       offset: int = Query(0, ge=0, le=MAX_OFFSET),
                       kind: int | None = Query(None, ge=0, le=3)) -> dict[str, Any]:
    """Newest first, OneSignal's NotificationSlice shape. `kind` (0 dashboard, 1 API,
    3 automated) is accepted and ignored: every message recorded here came through the API."""
    app = caller(request, svc, app_id)
    total, found = svc.messages(app, limit, offset)
    return {"total_count": total, "offset": offset, "limit": limit,
            "notifications": [messages.to_api(m, app) for m in found]}
