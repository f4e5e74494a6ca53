"""App-level activity exports: every event of an app's messages, one row each, with a
cursor that continues where the previous export stopped (`msgtrail.export.activity_feed`)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query, Request
from starlette.concurrency import run_in_threadpool

from msgtrail.inputs import json_object
from msgtrail.web.api.notifications import MAX_OFFSET
from msgtrail.web.api.openapi import ACTIVITY_EXPORT_BODY, errors
from msgtrail.web.deps import Svc, actor, caller

router = APIRouter(tags=["activity exports"])


@router.post("/apps/{app_id}/activity_exports", summary="Export an app's activity, per event",
             responses=errors(400, 401, 404, 429, 503),
             openapi_extra={"requestBody": ACTIVITY_EXPORT_BODY})
async def create(request: Request, svc: Svc, app_id: str) -> dict[str, str]:
    """Answers `{"export_id", "file_url", "manifest_url"}` at once; a worker writes the
    file, which answers 404 NoSuchKey until it is complete. Every field is optional."""
    body = json_object(await request.body())

    def create() -> dict[str, str]:
        return svc.request_activity_export(caller(request, svc, app_id), actor(request), body)

    return await run_in_threadpool(create)


@router.get("/apps/{app_id}/activity_exports/{export_id}", summary="Activity export status",
            responses=errors(400, 401, 404, 503))
def status(request: Request, svc: Svc, app_id: str, export_id: str) -> dict[str, Any]:
    """As an export's status, plus its filter and, once finished, `next_cursor`."""
    return svc.activity_export_status(caller(request, svc, app_id), export_id)


@router.get("/apps/{app_id}/activity_exports", summary="An app's activity exports",
            responses=errors(400, 401, 404, 503))
def listing(request: Request, svc: Svc, app_id: str, limit: int = Query(20, ge=1, le=100),
            offset: int = Query(0, ge=0, le=MAX_OFFSET)) -> dict[str, Any]:
    """The app's activity exports, newest first: `{"total_count", "offset", "limit",
    "exports": [status…]}`."""
    total, exports = svc.activity_exports(caller(request, svc, app_id), limit, offset)
    return {"total_count": total, "offset": offset, "limit": limit, "exports": exports}
