"""Event ingestion: a delivery pipeline reports per-recipient activity."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from msgtrail.web.api.openapi import EVENTS_BODY, errors
from msgtrail.web.body import read_body
from msgtrail.web.deps import Svc, caller

router = APIRouter(tags=["activity"])


@router.post("/notifications/{message_id}/events", summary="Record activity events",
             responses=errors(400, 401, 404, 413, 503),
             openapi_extra={"requestBody": EVENTS_BODY})
async def ingest_events(request: Request, svc: Svc, message_id: str,
                        app_id: str | None = None) -> dict[str, int]:
    """JSON `{"events": [...]}` or NDJSON (`application/x-ndjson`), all or nothing.
    Answers `{"accepted": n, "duplicates": m}`."""
    body = await read_body(request, svc.settings.max_request_bytes)
    ndjson = "ndjson" in request.headers.get("content-type", "")

    def ingest() -> dict[str, int]:
        return svc.ingest(caller(request, svc, app_id), message_id, body, ndjson)

    return await run_in_threadpool(ingest)
