"""OneSignal's audience-activity export, and the job status msgtrail adds to it."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from msgtrail.export.params import file_format
from msgtrail.inputs import flag, json_object
from msgtrail.web.api.openapi import EXPORT_BODY, errors
from msgtrail.web.deps import Svc, actor, caller

router = APIRouter(tags=["exports"])


@router.post("/notifications/{message_id}/export_events",
             summary="Export audience activity CSV",
             responses=errors(400, 401, 404, 429, 503),
             openapi_extra={"requestBody": EXPORT_BODY})
async def export_events(request: Request, svc: Svc, message_id: str,
                        app_id: str | None = None, events: str | None = None,
                        csv_raw: bool | None = None,
                        format: str | None = None) -> dict[str, str]:
    """Answers `{"csv_file_url": …, "export_id": …}` at once; a worker writes the file,
    and the URL answers 404 NoSuchKey until it is complete. `format`: csv (OneSignal's,
    the default), jsonl or parquet."""
    body = json_object(await request.body())
    raw = csv_raw if csv_raw is not None else flag(body.get("csv_raw"), "csv_raw")
    fmt = file_format(format if format is not None else body.get("format"))
    wanted = events if events is not None else body.get("events")

    def export() -> dict[str, str]:
        return svc.request_export(caller(request, svc, app_id), actor(request), message_id,
                                  wanted, raw, fmt)

    return await run_in_threadpool(export)


@router.get("/notifications/{message_id}/export_events/{export_id}",
            summary="Export job status", responses=errors(400, 401, 404, 503))
def export_status(request: Request, svc: Svc, message_id: str, export_id: str,
                  app_id: str | None = None) -> dict[str, Any]:
    """State (queued, running, ready, failed, expired), rows written, total rows,
    bytes, times and error of an export; once ready, its manifest."""
    return svc.export_status(caller(request, svc, app_id), message_id, export_id)
