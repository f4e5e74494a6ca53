"""App-level activity exports: every event of an app's messages, one row each, with a
cursor that continues where the previous export stopped (`msgtrail.export.activity_feed`)."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import APIRouter, Query, Request
from sqlalchemy import select
from starlette.concurrency import run_in_threadpool

from msgtrail.apps import App
from msgtrail.channels import EVENTS
from msgtrail.db.schema import messages
from msgtrail.errors import BadRequest
from msgtrail.export import jobs
from msgtrail.export.file_formats import COMPRESSIONS, DEFAULT_COMPRESSION
from msgtrail.store.event_batch import parse_iso
from msgtrail.web.api.auth import require_app, require_uuid
from msgtrail.web.api.exports import (
    event_names,
    file_format,
    json_object,
    manifest_url,
    public_status,
    start_job,
    status_of,
)
from msgtrail.web.api.notifications import MAX_OFFSET
from msgtrail.web.api.openapi import ACTIVITY_EXPORT_BODY, errors

router = APIRouter(tags=["activity exports"])

FIELDS = ("message_ids", "events", "since", "until", "cursor", "format", "compression")
MAX_MESSAGE_IDS = 1_000


@router.post("/apps/{app_id}/activity_exports", summary="Export an app's activity, per event",
             responses=errors(400, 401, 404, 429, 503),
             openapi_extra={"requestBody": ACTIVITY_EXPORT_BODY})
async def create(request: Request, app_id: str) -> dict[str, str]:
    """Answers `{"export_id", "file_url", "manifest_url"}` at once; a worker writes the
    file, which answers 404 NoSuchKey until it is complete. Every field is optional."""
    body = json_object(await request.body())
    return await run_in_threadpool(_create, request, app_id, body)


def _create(request: Request, app_id: str, body: dict[str, Any]) -> dict[str, str]:
    app = require_app(request, app_id)
    params = parse(request, app, body)
    request.app.state.export_limit.hit(app.app_id)
    job = start_job(request, app, None, "activity", params)
    return {"export_id": job.export_id, "file_url": job.url,
            "manifest_url": manifest_url(request, job.file_key)}


def parse(request: Request, app: App, body: dict[str, Any]) -> dict[str, Any]:
    """The job's parameters from the body, every field checked (each error named)."""
    unknown = sorted(set(body) - set(FIELDS))
    if unknown:
        raise BadRequest(f"unknown field(s) {', '.join(map(repr, unknown))}; "
                         f"the fields are {', '.join(FIELDS)}")
    fmt = file_format(body.get("format"))
    compression = body.get("compression") or DEFAULT_COMPRESSION[fmt]
    if compression not in COMPRESSIONS:
        raise BadRequest(f"compression: must be one of {', '.join(COMPRESSIONS)}")
    if fmt == "parquet" and compression != "none":
        raise BadRequest("compression: a Parquet file is compressed inside, by column; "
                         "leave compression out or set none")
    since, until = moment(body.get("since"), "since"), moment(body.get("until"), "until")
    if since is not None and until is not None and since >= until:
        raise BadRequest("until: must be after since")
    return {"message_ids": message_ids(request, app, body.get("message_ids")),
            "events": event_names(body.get("events"), EVENTS) or None,
            "since": since, "until": until,
            "cursor": cursor(request, app, body.get("cursor")),
            "format": fmt, "compression": compression}


def message_ids(request: Request, app: App, raw: Any) -> list[str] | None:
    """The app's messages to export (None: all), each kept and live."""
    if raw is None:
        return None
    if not isinstance(raw, list) or not raw or len(raw) > MAX_MESSAGE_IDS:
        raise BadRequest(f"message_ids: a list of 1 to {MAX_MESSAGE_IDS} message ids")
    wanted = sorted({require_uuid(v if isinstance(v, str) else None, "message_ids[]")
                     for v in raw})
    with request.app.state.engine.connect() as conn:
        found = set(conn.execute(select(messages.c.message_id).where(
            messages.c.app_pk == app.pk, messages.c.message_id.in_(wanted),
            messages.c.purged_at.is_(None))).scalars())
        conn.rollback()
    missing = [m for m in wanted if m not in found]
    if missing:
        raise BadRequest(f"message_ids: no message {', '.join(missing)} in this app, or "
                         "its activity was purged")
    return wanted


def moment(raw: Any, name: str) -> int | None:
    """Unix seconds or ISO 8601 (no zone: UTC), as unix seconds."""
    if raw is None:
        return None
    if isinstance(raw, int) and not isinstance(raw, bool) and raw >= 0:
        return raw
    parsed = parse_iso(raw) if isinstance(raw, str) else None
    if parsed is None:
        raise BadRequest(f"{name}: {raw!r} is neither unix seconds nor ISO 8601")
    return parsed


def cursor(request: Request, app: App, raw: Any) -> str | None:
    """A `next_cursor` of one of the app's finished activity exports."""
    if raw is None:
        return None
    try:
        export_id = str(uuid.UUID(raw)) if isinstance(raw, str) else None
    except ValueError:
        export_id = None
    with request.app.state.engine.connect() as conn:
        job = jobs.find_in_app(conn, app, "activity", export_id) if export_id else None
        conn.rollback()
    if job is None or job.marks is None:
        raise BadRequest(f"cursor: {raw!r} is not the next_cursor of a finished activity "
                         "export of this app")
    return export_id


@router.get("/apps/{app_id}/activity_exports/{export_id}", summary="Activity export status",
            responses=errors(400, 401, 404, 503))
def status(request: Request, app_id: str, export_id: str) -> dict[str, Any]:
    """As an export's status, plus its filter and, once finished, `next_cursor`."""
    app = require_app(request, app_id)
    export_id = require_uuid(export_id, "export_id")
    return status_of(request, lambda conn: jobs.find_in_app(conn, app, "activity", export_id),
                     f"No activity export with id {export_id} in this app")


@router.get("/apps/{app_id}/activity_exports", summary="An app's activity exports",
            responses=errors(400, 401, 404, 503))
def listing(request: Request, app_id: str, limit: int = Query(20, ge=1, le=100),
            offset: int = Query(0, ge=0, le=MAX_OFFSET)) -> dict[str, Any]:
    """The app's activity exports, newest first: `{"total_count", "offset", "limit",
    "exports": [status…]}`."""
    app = require_app(request, app_id)
    with request.app.state.engine.connect() as conn:
        found, total = jobs.of_app(conn, app, "activity", limit, offset)
        exports = [public_status(request, conn, job) for job in found]
        conn.rollback()
    return {"total_count": total, "offset": offset, "limit": limit, "exports": exports}
