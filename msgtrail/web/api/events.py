"""Event ingestion: a delivery pipeline reports per-recipient activity."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from msgtrail import messages
from msgtrail.clock import now
from msgtrail.errors import PayloadTooLarge
from msgtrail.store import activity
from msgtrail.store.event_batch import parse_batch
from msgtrail.web.api.auth import require_app, require_uuid
from msgtrail.web.api.openapi import EVENTS_BODY, errors

router = APIRouter(tags=["activity"])


# A body over the limit is still read (and dropped) up to this many times the limit
# before the 413 is sent: a client that sends the whole body before it reads an answer
# (no `Expect: 100-continue`, as Python's urllib and requests do) would otherwise have
# its connection reset under it and never see the 413. Beyond this, it is cut off.
DRAIN_FACTOR = 4


async def read_body(request: Request, limit: int) -> bytes:
    """The body, or 413 once it passes `limit` bytes; nothing of it is kept then."""
    declared = request.headers.get("content-length", "")
    # A client waiting for `100 Continue` has sent nothing yet: answer it at once (the
    # server only says 100 Continue once the body is read). So for a body too large to
    # drain.
    if declared.isdigit() and int(declared) > limit and (
            "100-continue" in request.headers.get("expect", "").lower()
            or int(declared) > DRAIN_FACTOR * limit):
        raise _too_large(limit)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            chunks.clear()
            if size > DRAIN_FACTOR * limit:
                break
            continue
        chunks.append(chunk)
    if size > limit:
        raise _too_large(limit)
    return b"".join(chunks)


def _too_large(limit: int) -> PayloadTooLarge:
    return PayloadTooLarge(f"body: larger than {limit} bytes")


@router.post("/notifications/{message_id}/events", summary="Record activity events",
             responses=errors(400, 401, 404, 413, 503),
             openapi_extra={"requestBody": EVENTS_BODY})
async def ingest_events(request: Request, message_id: str,
                        app_id: str | None = None) -> dict[str, int]:
    """JSON `{"events": [...]}` or NDJSON (`application/x-ndjson`), all or nothing.
    Answers `{"accepted": n, "duplicates": m}`."""
    settings = request.app.state.settings
    body = await read_body(request, settings.max_request_bytes)
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
        activity.append(conn, message.pk, batch.events, now())
    return {"accepted": batch.events.num_rows, "duplicates": batch.duplicates}
