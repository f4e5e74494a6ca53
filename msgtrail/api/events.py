"""Event ingestion: a delivery pipeline reports per-recipient activity."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from msgtrail import activity, messages
from msgtrail.api.auth import require_app, require_uuid
from msgtrail.clock import now
from msgtrail.errors import PayloadTooLarge
from msgtrail.event_batch import parse_batch

router = APIRouter(tags=["activity"])


async def _read_body(request: Request, limit: int) -> bytes:
    """The body, refusing it (413) as soon as it passes `limit` bytes."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"body: larger than {limit} bytes")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"body: larger than {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


@router.post("/notifications/{message_id}/events", summary="Record activity events")
async def ingest_events(request: Request, message_id: str,
                        app_id: str | None = None) -> dict[str, int]:
    """JSON `{"events": [...]}` or NDJSON (`application/x-ndjson`), all or nothing.
    Answers `{"accepted": n, "duplicates": m}`."""
    settings = request.app.state.settings
    body = await _read_body(request, settings.max_request_bytes)
    ndjson = "ndjson" in request.headers.get("content-type", "")
    return await run_in_threadpool(_ingest, request, message_id, app_id, body, ndjson)


def _ingest(request: Request, message_id: str, app_id: str | None, body: bytes,
            ndjson: bool) -> dict[str, int]:
    settings = request.app.state.settings
    engine = request.app.state.engine
    app = require_app(request, app_id)
    message_id = require_uuid(message_id, "message_id")
    with engine.connect() as conn:
        message = messages.find(conn, app, message_id)
        conn.rollback()
    batch = parse_batch(body, ndjson, message.target_channel, now(),
                        settings.max_events_per_request)
    with engine.begin() as conn:
        activity.append(conn, message.pk, batch.rows, now())
    return {"accepted": len(batch.rows), "duplicates": batch.duplicates}
