"""OneSignal's message history: who was sent a message, or who clicked it, as CSV."""

from __future__ import annotations

import json
from typing import Any

from email_validator import EmailNotValidError, validate_email
from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from msgtrail.apps import App
from msgtrail.clock import now
from msgtrail.errors import BadRequest, MsgtrailError
from msgtrail.export import history_csv
from msgtrail.web.api.auth import require_app
from msgtrail.web.api.exports import (
    flag,
    job_params,
    json_object,
    live_message,
    manifest_url,
    start_job,
)
from msgtrail.web.api.openapi import HISTORY_BODY, errors

router = APIRouter(tags=["exports"])


@router.post("/notifications/{message_id}/history", summary="Message history",
             responses=errors(400, 401, 404, 429, 503),
             openapi_extra={"requestBody": HISTORY_BODY})
async def message_history(request: Request, message_id: str) -> dict[str, Any]:
    """Body `{"app_id": …, "events": "sent" | "clicked", "email": …}`; answers
    `{"success": true, "destination_url": …}` at once. The URL answers 403 AccessDenied
    until the report is ready."""
    raw = await request.body()
    try:
        return await run_in_threadpool(_history, request, message_id, raw)
    except MsgtrailError as exc:
        exc.extra.setdefault("success", False)  # OneSignal's history errors carry it
        raise


def _history(request: Request, message_id: str, raw: bytes) -> dict[str, Any]:
    body = json_object(raw)
    app_id = body.get("app_id", request.query_params.get("app_id"))
    app = require_app(request, app_id if isinstance(app_id, str) else None)
    return request_history(request, app, message_id, body.get("events"), body.get("email"),
                           flag(body.get("csv_raw"), "csv_raw"))


def request_history(request: Request, app: App, message_id: str, events: Any, email: Any,
                    csv_raw: bool) -> dict[str, Any]:
    """Queue a history report of the app's message (the API's and the dashboard's)."""
    settings = request.app.state.settings
    message = live_message(request, app, message_id)
    if events not in history_csv.EVENTS:
        raise BadRequest(f"events: must be one of {', '.join(history_csv.EVENTS)} "
                         f"(got {json.dumps(events)})")
    if email is not None:
        try:
            email = validate_email(email, check_deliverability=False).normalized
        except (EmailNotValidError, TypeError):
            raise BadRequest("param `email` must be a valid email") from None
        if not settings.smtp_host:
            raise BadRequest("email: this server has no SMTP server configured "
                             "(MSGTRAIL_SMTP_HOST), so it cannot email the report; "
                             "leave out `email` and poll destination_url instead")
    if not app.history_enabled:
        raise BadRequest("Send History via API is turned off for this app. Turn it on with "
                         f"`msgtrail apps update {app.app_id} --history on`.")
    if message.created_at < now() - settings.history_window_days * 86400:
        raise BadRequest(f"Message history is only available for {settings.history_window_days:g}"
                         " days after the message was sent.")
    request.app.state.export_limit.hit(app.app_id)
    job = start_job(request, app, message, "history", job_params(events, csv_raw), email)
    return {"success": True, "destination_url": job.url,
            "export_id": job.export_id, "manifest_url": manifest_url(request, job.file_key)}
