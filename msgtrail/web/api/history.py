"""OneSignal's message history: who was sent a message, or who clicked it, as CSV."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from msgtrail.errors import MsgtrailError
from msgtrail.inputs import flag, json_object
from msgtrail.web.api.openapi import HISTORY_BODY, errors
from msgtrail.web.deps import Svc, actor, caller

router = APIRouter(tags=["exports"])


@router.post("/notifications/{message_id}/history", summary="Message history",
             responses=errors(400, 401, 404, 429, 503),
             openapi_extra={"requestBody": HISTORY_BODY})
async def message_history(request: Request, svc: Svc, message_id: str) -> dict[str, Any]:
    """Body `{"app_id": …, "events": "sent" | "clicked", "email": …}`; answers
    `{"success": true, "destination_url": …}` at once. The URL answers 403 AccessDenied
    until the report is ready."""
    raw = await request.body()

    def history() -> dict[str, Any]:
        body = json_object(raw)
        app_id = body.get("app_id", request.query_params.get("app_id"))
        app = caller(request, svc, app_id if isinstance(app_id, str) else None)
        return svc.request_history(app, actor(request), message_id, body.get("events"),
                                   body.get("email"), flag(body.get("csv_raw"), "csv_raw"))

    try:
        return await run_in_threadpool(history)
    except MsgtrailError as exc:
        exc.extra.setdefault("success", False)  # OneSignal's history errors carry it
        raise
