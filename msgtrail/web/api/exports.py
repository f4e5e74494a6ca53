"""OneSignal's audience-activity export, and the job status msgtrail adds to it."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Request
from sqlalchemy import Connection
from starlette.concurrency import run_in_threadpool

from msgtrail import messages
from msgtrail.apps import App
from msgtrail.channels import CHANNEL_EVENTS
from msgtrail.errors import BadRequest, NotFound, Unavailable
from msgtrail.export import jobs
from msgtrail.export.file_formats import FORMATS
from msgtrail.export.pipeline import rows_from_totals, selected_events
from msgtrail.messages import Message
from msgtrail.notify import export_webhooks
from msgtrail.web.api.auth import require_app, require_uuid
from msgtrail.web.api.openapi import EXPORT_BODY, errors

router = APIRouter(tags=["exports"])

PURGED = ("No message exists with the provided `message_id` in this app, or the message is "
          "older than {days:g} days and its audience activity has been purged.")


# A presigned URL outlives the file by this much, so that after the file is deleted
# it answers 404 NoSuchKey (as the seed says) rather than 403 "Request has expired".
PRESIGN_MARGIN_SECONDS = 86_400


def file_url(request: Request, kind: str, key: str) -> str:
    """Where the file will be: in S3 mode an export's URL is a presigned URL of the
    store itself, which serves the bytes; otherwise msgtrail's own /exports route (which
    history always uses, since its 403-until-ready cannot come from the store)."""
    settings = request.app.state.settings
    if kind != "history":
        direct = request.app.state.store.presign(
            key, settings.file_ttl_seconds + PRESIGN_MARGIN_SECONDS)
        if direct:
            return direct
    return f"{settings.resolved_public_url()}/exports/{key}"


def manifest_url(request: Request, key: str) -> str:
    return jobs.manifest_url(request.app.state.settings.resolved_public_url(), key)


def status_of(request: Request, find: Callable[[Connection], jobs.Job | None],
              missing: str) -> dict[str, Any]:
    """The public status of the job `find` finds on a connection of its own; a 404
    saying `missing` if it finds none."""
    with request.app.state.engine.connect() as conn:
        try:
            job = find(conn)
            if job is None:
                raise NotFound(missing)
            return public_status(request, conn, job)
        finally:
            conn.rollback()


def public_status(request: Request, conn: Connection, job: jobs.Job) -> dict[str, Any]:
    """A job's status as the status endpoints answer it, with its webhook's state (read
    on the caller's connection)."""
    return {**jobs.public_status(job, request.app.state.settings.resolved_public_url()),
            **export_webhooks.state(conn, job.id)}


def parse_events(raw: Any, channel: str) -> list[str]:
    """The `events` filter of a message's export: the channel's events."""
    return event_names(raw, CHANNEL_EVENTS[channel], f"the {channel} events ")


def event_names(raw: Any, allowed: tuple[str, ...], among: str = "") -> list[str]:
    """An `events` filter, a comma-separated string or a list of names from `allowed`
    (empty: no filter), in `allowed`'s order."""
    if raw is None or raw == "" or raw == []:
        return []
    if isinstance(raw, str):
        names = [p.strip() for p in raw.split(",") if p.strip()]
    elif isinstance(raw, list) and all(isinstance(p, str) for p in raw):
        names = raw
    else:
        raise BadRequest("events: a comma-separated list of event names")
    bad = [n for n in names if n not in allowed]
    if bad:
        raise BadRequest(f"events: {', '.join(map(repr, bad))} not among {among}"
                         f"{', '.join(allowed)}")
    return sorted(set(names), key=allowed.index)


def json_object(raw: bytes) -> dict[str, Any]:
    """A request body that must be a JSON object; empty counts as `{}` (OneSignal's SDKs
    send an empty body to export_events)."""
    if not raw.strip():
        return {}
    try:
        doc = json.loads(raw)
    except ValueError:
        raise BadRequest("body: not valid JSON") from None
    if not isinstance(doc, dict):
        raise BadRequest("body: must be a JSON object")
    return doc


def live_message(request: Request, app: App, message_id: str) -> Message:
    """The app's message while its activity is kept; 404 once it was purged."""
    message_id = require_uuid(message_id, "message_id")
    settings = request.app.state.settings
    with request.app.state.engine.connect() as conn:
        try:
            message = messages.find(conn, app, message_id)
        except NotFound:
            raise NotFound(PURGED.format(days=settings.activity_retention_days)) from None
        finally:
            conn.rollback()
    if message.purged_at is not None:
        raise NotFound(PURGED.format(days=settings.activity_retention_days))
    return message


@router.post("/notifications/{message_id}/export_events",
             summary="Export audience activity CSV",
             responses=errors(400, 401, 404, 429, 503),
             openapi_extra={"requestBody": EXPORT_BODY})
async def export_events(request: Request, message_id: str, app_id: str | None = None,
                        events: str | None = None, csv_raw: bool | None = None,
                        format: str | None = None) -> dict[str, str]:
    """Answers `{"csv_file_url": …, "export_id": …}` at once; a worker writes the file,
    and the URL answers 404 NoSuchKey until it is complete. `format`: csv (OneSignal's,
    the default), jsonl or parquet."""
    body = json_object(await request.body())
    raw = csv_raw if csv_raw is not None else flag(body.get("csv_raw"), "csv_raw")
    fmt = file_format(format if format is not None else body.get("format"))
    return await run_in_threadpool(_export, request, message_id, app_id,
                                   events if events is not None else body.get("events"), raw,
                                   fmt)


def file_format(value: Any) -> str:
    """The `format` asked for: csv when absent."""
    if value is None or value == "":
        return "csv"
    if value not in FORMATS:
        raise BadRequest(f"format: must be one of {', '.join(FORMATS)}")
    return str(value)


def _export(request: Request, message_id: str, app_id: str | None, events: Any,
            raw: bool, fmt: str) -> dict[str, str]:
    return request_export(request, require_app(request, app_id), message_id, events, raw, fmt)


def request_export(request: Request, app: App, message_id: str, events: Any,
                   raw: bool, fmt: str = "csv") -> dict[str, str]:
    """Queue an export of the app's message (the API's and the dashboard's)."""
    message = live_message(request, app, message_id)
    wanted = parse_events(events, message.target_channel)
    request.app.state.export_limit.hit(app.app_id)
    params = {**job_params(wanted, raw), **({"format": fmt} if fmt != "csv" else {})}
    job = start_job(request, app, message, "export", params)
    return {"csv_file_url": job.url, "export_id": job.export_id,
            "manifest_url": manifest_url(request, job.file_key)}


def flag(value: Any, name: str) -> bool:
    """An optional boolean of a JSON body (absent: false)."""
    if value is None:
        return False
    if not isinstance(value, bool):
        raise BadRequest(f"{name}: must be true or false")
    return value


def job_params(events: list[str] | str, raw: bool) -> dict[str, Any]:
    """A job's parameters; `csv_raw` only when asked for, so that the parameters of
    a default export stay what they always were."""
    return {"events": events, **({"csv_raw": True} if raw else {})}


def start_job(request: Request, app: App, message: Message | None, kind: str,
              params: dict[str, Any], email: str | None = None) -> jobs.Job:
    """Queue a job (of a message, or of the whole app) once the store can take its file
    (503 otherwise)."""
    if not request.app.state.store_healthy():
        raise Unavailable("Service temporarily unavailable: export storage cannot be written")
    totals = ((message.stats or {}).get("totals") or {}) if message is not None else {}
    estimate = rows_from_totals(totals, selected_events(kind, params)) if totals else None
    with request.app.state.engine.begin() as conn:
        job = jobs.request(conn, kind, app, message, params, estimate,
                           lambda key: file_url(request, kind, key), email)
    request.app.state.wake_workers()
    return job


@router.get("/notifications/{message_id}/export_events/{export_id}",
            summary="Export job status", responses=errors(400, 401, 404, 503))
def export_status(request: Request, message_id: str, export_id: str,
                  app_id: str | None = None) -> dict[str, Any]:
    """State (queued, running, ready, failed, expired), rows written, total rows,
    bytes, times and error of an export; once ready, its manifest."""
    app = require_app(request, app_id)
    message_id = require_uuid(message_id, "message_id")
    export_id = require_uuid(export_id, "export_id")
    return status_of(
        request, lambda conn: jobs.find(conn, app, messages.find(conn, app, message_id),
                                        export_id),
        f"No export with id {export_id} for this message")
