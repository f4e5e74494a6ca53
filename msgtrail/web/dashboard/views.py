"""The dashboard's pages: sign in with an app's id and key, its messages, and a
message's report with its exports. Server-rendered (Jinja2, autoescaped); the only
script is static/dashboard.js, which follows a running export's progress."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

from fastapi import APIRouter, Request
from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData, UploadFile
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

from msgtrail import apps, audit, messages
from msgtrail.apps import App
from msgtrail.audit import Actor
from msgtrail.channels import CHANNEL_EVENTS
from msgtrail.clock import exact
from msgtrail.errors import MsgtrailError, NotFound, PayloadTooLarge
from msgtrail.export import history_csv, jobs
from msgtrail.service import Service
from msgtrail.web.body import read_body
from msgtrail.web.dashboard import charts, report
from msgtrail.web.dashboard.session import Session, csrf_ok, sessions_of
from msgtrail.web.deps import Svc, remote

HERE = Path(__file__).parent
# How the report names the platform_delivery_stats keys.
PLATFORM_NAMES = {"ios": "iOS", "android": "Android", "chrome_web_push": "Chrome (web)",
                  "firefox_web_push": "Firefox (web)", "safari_web_push": "Safari (web)",
                  "edge_web_push": "Edge (web)", "email": "Email", "sms": "SMS"}
PAGE_SIZE = 20
# The forms carry an app id, a key, a CSRF token and an email address: a body past
# this is not one of them, and is refused (413) before any of it is parsed.
FORM_MAX_BYTES = 16 * 1024
# No inline script or style anywhere: the pages work under this policy as written.
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self'; "
                               "img-src 'self' data:; connect-src 'self'; object-src 'none'; "
                               "base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}

router = APIRouter(include_in_schema=False)
templates = Environment(loader=FileSystemLoader(HERE / "templates"),
                        autoescape=select_autoescape(["html"]))


def _when(ts: float | None) -> str:
    if not ts:
        return ""
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M UTC")


def _moment(ts: float | None) -> Markup:
    """A time in a table cell: short, on one line, the full time in its `datetime`."""
    if not ts:
        return Markup("")
    at = datetime.fromtimestamp(ts, UTC)
    return Markup('<time datetime="{}">{}</time>').format(
        at.isoformat(timespec="seconds"), at.strftime("%b %d %H:%M"))


def _percent(part: int, whole: int) -> str:
    return f"{100 * part / whole:.1f}%" if whole else "n/a"


templates.filters.update(when=_when, moment=_moment, percent=_percent)


class Static(StaticFiles):
    """The dashboard's CSS and script, with the pages' security headers."""

    async def get_response(self, path: str, scope: Scope) -> Response:
        response = await super().get_response(path, scope)
        response.headers.update({k: v for k, v in SECURITY_HEADERS.items()
                                 if k != "Cache-Control"})
        return response


def static_files() -> Static:
    return Static(directory=HERE / "static")


def _render(svc: Service, template: str, session: Session, status: int = 200,
            **context: Any) -> HTMLResponse:
    html = templates.get_template(template).render(csrf=session.csrf, **context)
    response = HTMLResponse(html, status_code=status, headers=SECURITY_HEADERS)
    sessions_of(svc).write(response, session)
    return response


def _session(request: Request, svc: Service) -> Session:
    """The request's session, or a new anonymous one."""
    sessions = sessions_of(svc)
    return sessions.read(request) or sessions.anonymous()


def _signed_in(request: Request, svc: Service) -> tuple[Session, App] | None:
    """The session and its app, if its key is still active and still that app's."""
    session = sessions_of(svc).read(request)
    if session is None or session.app_pk is None or not session.key_hash:
        return None
    app = svc.app_for_key_hash(session.key_hash)
    if app is None or app.pk != session.app_pk:
        return None
    return session, app


def _actor(request: Request, session: Session) -> Actor:
    """Who acts through the dashboard: the address, the key the session signed in with."""
    return Actor("dashboard", remote(request), key_hash=session.key_hash)


def _to_sign_in() -> RedirectResponse:
    return RedirectResponse("/", status_code=303)


def _forbidden(request: Request, svc: Service) -> HTMLResponse:
    return _render(svc, "error.html", _session(request, svc), 403,
                   message="This form has expired or did not come from this page. "
                           "Go back, reload and try again.")


async def _form(request: Request, svc: Service) -> FormData | Response:
    """The posted form (URL-encoded, as the pages send it), or the 413 page."""
    try:
        body = await read_body(request, FORM_MAX_BYTES)
    except PayloadTooLarge:
        return _render(svc, "error.html", _session(request, svc), 413,
                       message="That form is larger than any of these pages sends.")
    if request.headers.get("content-type", "").split(";")[0].strip().lower() != (
            "application/x-www-form-urlencoded"):
        return FormData()  # no fields, so no CSRF token: refused as a forged form
    fields: list[tuple[str, str | UploadFile]] = list(
        parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
    return FormData(fields)


async def _posted(request: Request, svc: Service, session: Session | None = None
                  ) -> tuple[FormData, Session] | Response:
    """A form posted with its page's CSRF token, and the session it belongs to (the
    request's own unless given); else the page that refuses it (413 or 403)."""
    form = await _form(request, svc)
    if isinstance(form, Response):
        return form
    if session is None:
        session = await run_in_threadpool(sessions_of(svc).read, request)
    if session is None or not csrf_ok(session, form.get("csrf")):
        return _forbidden(request, svc)
    return form, session


@router.get("/")
def home(request: Request, svc: Svc) -> Response:
    if _signed_in(request, svc):
        return RedirectResponse("/messages", status_code=303)
    return _render(svc, "signin.html", _session(request, svc))


@router.post("/signin")
async def sign_in(request: Request, svc: Svc) -> Response:
    posted = await _posted(request, svc)
    if isinstance(posted, Response):
        return posted
    form, session = posted
    app_id, key = str(form.get("app_id", "")).strip(), str(form.get("api_key", "")).strip()

    def check() -> App | None:
        found = svc.app_for_key(key) if key else None
        return found if found is not None and found.app_id == app_id else None

    app = await run_in_threadpool(check)
    if app is None:
        return _render(svc, "signin.html", session, 401, app_id=app_id,
                       error="That app ID and API key do not match an active key.")
    sessions = sessions_of(svc)
    signed_in = await run_in_threadpool(sessions.sign_in, app.pk, apps.hash_key(key), Actor(
        "dashboard", remote(request), key_prefix=key[:audit.PREFIX]))
    response = RedirectResponse("/messages", status_code=303)
    sessions.write(response, signed_in)
    return response


@router.post("/signout")
async def sign_out(request: Request, svc: Svc) -> Response:
    posted = await _posted(request, svc)
    if isinstance(posted, Response):
        return posted
    _, session = posted
    sessions = sessions_of(svc)
    await run_in_threadpool(sessions.sign_out, session, _actor(request, session))
    response = RedirectResponse("/", status_code=303)
    sessions.clear(response)
    return response


@router.get("/messages")
def message_list(request: Request, svc: Svc, q: str = "", page: int = 1) -> Response:
    found = _signed_in(request, svc)
    if found is None:
        return _to_sign_in()
    session, app = found
    page = max(1, min(page, 100_000))
    # Each message's counters as kept: a big one never counted is counted in the
    # background while its row says so.
    total, rows = svc.messages(app, PAGE_SIZE, (page - 1) * PAGE_SIZE,
                               q.strip()[:200] or None, wait=False)
    items = [_summary(m) for m in rows]
    return _render(svc, "messages.html", session, app=app, section="messages", items=items,
                   q=q, page=page, pending=not all(i["counted"] for i in items),
                   pages=max(1, -(-total // PAGE_SIZE)), total=total)


def _summary(message: messages.Message) -> dict[str, Any]:
    totals = (message.stats or {}).get("totals") or {}
    return {"message": message, "counted": message.stats is not None, **{
        k: int(totals.get(k, 0)) for k in (
            "recipients", "sent", "delivered", "clicked", "unsubscribed", "opened", "bounced")},
        "failed": messages.failures(totals)}


def _report(request: Request, svc: Service, app: App, message_id: str) -> dict[str, Any]:
    """Everything the report page shows (NotFound for another app's message), from
    what the store keeps (`store.kept`): a view never counts a big message's
    recipients (a count of 1,000,000 took ~1 s); a part still being counted says so,
    and the page's script fetches it again until it is there."""
    message = svc.message(app, message_id, wait=False)
    activity = request.query_params.get("activity") or None
    if activity not in CHANNEL_EVENTS[message.target_channel]:
        activity = None
    timeline = report.activity_timeline(svc, message)
    after = request.query_params.get("after") or None
    find = (request.query_params.get("find") or "").strip()[:512] or None
    sample = report.audience(svc, message, activity, after, find)
    past = svc.message_jobs(app, message)
    return {"app": app, "summary": _summary(message), "message": message,
            # One naming of platforms (the API's keys, read as people say them), the
            # busiest first.
            "platforms": {PLATFORM_NAMES.get(k, k): {**part, "failed": messages.failures(part)}
                          for k, part in sorted(
                              ((message.stats or {}).get("platforms") or {}).items(),
                              key=lambda item: -int(item[1].get("sent", 0)))},
            "chart": charts.svg(timeline) if timeline else None,
            "chart_label": charts.describe(timeline) if timeline else "",
            "chart_bucket": charts.bucket_name(timeline.bucket) if timeline else "",
            "events": CHANNEL_EVENTS[message.target_channel],
            "activity": activity, "recipients": sample, "sample_size": report.SAMPLE,
            "find": find or "", "after": after,
            "next_after": sample[-1]["subscription_id"]
            if sample and len(sample) == report.SAMPLE and not find else None,
            "jobs": [jobs.status(j) for j in past], "history_events": history_csv.EVENTS,
            "smtp": bool(svc.settings.smtp_host),
            "now": exact()}


async def _report_page(request: Request, svc: Service, message_id: str, status: int = 200,
                       **extra: Any) -> Response:
    found = await run_in_threadpool(_signed_in, request, svc)
    if found is None:
        return _to_sign_in()
    session, app = found
    try:
        context = await run_in_threadpool(_report, request, svc, app, message_id)
    except NotFound:
        return _render(svc, "error.html", session, 404, app=app,
                       message="No such message in this app.")
    return _render(svc, "report.html", session, status, **context, **extra)


@router.get("/messages/{message_id}")
async def message_report(request: Request, svc: Svc, message_id: str) -> Response:
    return await _report_page(request, svc, message_id)


async def _signed_in_form(request: Request, svc: Service
                          ) -> tuple[Session, App, FormData] | Response:
    """A form of a signed-in app with its page's CSRF token: the session, the app and
    the form; else where to go instead (sign in, 403, 413)."""
    found = await run_in_threadpool(_signed_in, request, svc)
    if found is None:
        return _to_sign_in()
    session, app = found
    posted = await _posted(request, svc, session)
    if isinstance(posted, Response):
        return posted
    return session, app, posted[0]


async def _start(request: Request, svc: Service, message_id: str, kind: str) -> Response:
    signed = await _signed_in_form(request, svc)
    if isinstance(signed, Response):
        return signed
    session, app, form = signed
    # The page's script asks for JSON: the new row, to start the export in place.
    in_place = "application/json" in request.headers.get("accept", "")
    try:
        if kind == "export":
            events = str(form.get("events") or "")
            started = await run_in_threadpool(svc.request_export, app,
                                              _actor(request, session), message_id, events,
                                              False)
        else:
            email = str(form.get("email") or "").strip() or None
            started = await run_in_threadpool(svc.request_history, app,
                                              _actor(request, session), message_id,
                                              form.get("events"), email, False)
    except MsgtrailError as exc:
        if in_place:
            return JSONResponse({"errors": exc.messages}, status_code=exc.status_code,
                                headers=exc.headers)
        return await _report_page(request, svc, message_id, exc.status_code,
                                  error=" ".join(exc.messages))
    if not in_place:
        return RedirectResponse(f"/messages/{message_id}#exports", status_code=303)
    job = await run_in_threadpool(svc.message_job, app, message_id, started["export_id"])
    assert job is not None
    row = templates.get_template("_job_row.html").render(
        j=jobs.status(job), message={"message_id": message_id})
    return JSONResponse({"row": row}, headers={"Cache-Control": "no-store"})


@router.post("/messages/{message_id}/export")
async def start_export(request: Request, svc: Svc, message_id: str) -> Response:
    return await _start(request, svc, message_id, "export")


@router.post("/messages/{message_id}/history")
async def start_history(request: Request, svc: Svc, message_id: str) -> Response:
    return await _start(request, svc, message_id, "history")


@router.get("/messages/{message_id}/jobs/{export_id}")
def job_progress(request: Request, svc: Svc, message_id: str, export_id: str) -> Response:
    """A job's status for the page's progress bar, with an ETA while it runs."""
    found = _signed_in(request, svc)
    if found is None:
        return JSONResponse({"errors": ["Signed out"]}, status_code=401)
    _, app = found
    job = svc.message_job(app, message_id, export_id)
    if job is None:
        return JSONResponse({"errors": ["No such export"]}, status_code=404)
    doc = jobs.status(job)
    if job.state == "running" and job.started_at and job.rows_written and job.total_rows:
        rate = job.rows_written / max(exact() - job.started_at, 1e-3)
        doc["eta_seconds"] = max(0, round((job.total_rows - job.rows_written) / rate))
    return JSONResponse(doc, headers={"Cache-Control": "no-store"})
