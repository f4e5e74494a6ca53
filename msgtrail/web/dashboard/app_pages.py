"""The dashboard's pages for the app itself, beside its messages: API keys, provider
connectors, rejected webhook events, the completion webhook, settings, activity
exports and the audit trail. Every form carries the page's CSRF token, and each page
shows only the signed-in app's own; a key or secret is shown once, in the answer to
the form that issued it (pages are never cached)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import RedirectResponse, Response

from msgtrail import apps
from msgtrail.apps import App
from msgtrail.audit import Actor
from msgtrail.channels import EVENTS
from msgtrail.errors import MsgtrailError
from msgtrail.ingest import SOURCE_NAMES, test_event
from msgtrail.ingest.connections import HINTS
from msgtrail.ingest.intake import RECORDED, TEST_EVENT
from msgtrail.service import Service
from msgtrail.web.dashboard.session import Session, sessions_of
from msgtrail.web.dashboard.views import (
    PAGE_SIZE,
    _actor,
    _render,
    _signed_in,
    _signed_in_form,
    _to_sign_in,
)
from msgtrail.web.deps import Svc

router = APIRouter(include_in_schema=False)

# What each act of the audit trail is called on its page.
ACTS = {"app.created": "App created", "key.issued": "API key issued",
        "key.rotated": "API key rotated", "key.revoked": "API key revoked",
        "connector.connected": "Connector set up",
        "connector.disconnected": "Connector removed", "settings.changed": "Settings changed",
        "export.requested": "Export requested", "file.downloaded": "File downloaded",
        "dashboard.signed_in": "Signed in", "dashboard.signed_out": "Signed out"}
# The credential each provider's connection takes from the form (name, label, kind).
CREDENTIALS: dict[str, list[tuple[str, str, str]]] = {
    "onesignal": [],
    "sendgrid": [("public_key", "Signed Event Webhook verification key", "text")],
    "ses": [("topic_arns", "SNS topic ARNs (one per line)", "textarea")],
    "twilio": [("auth_token", "Auth Token", "password")],
    "postmark": [("password", "Basic auth password (empty: one is generated)", "password")],
    "mailgun": [("signing_key", "HTTP webhook signing key", "password")],
}
NAMES = {"onesignal": "OneSignal Event Streams", "sendgrid": "SendGrid", "ses": "Amazon SES",
         "twilio": "Twilio", "postmark": "Postmark", "mailgun": "Mailgun"}


def _page(name: str, template: str,
          context: Callable[[Service, App], dict[str, Any]]) -> None:
    """A GET page of the signed-in app."""

    def show(request: Request, svc: Svc) -> Response:
        found = _signed_in(request, svc)
        if found is None:
            return _to_sign_in()
        session, app = found
        return _render(svc, template, session, app=app, section=name, **context(svc, app))

    router.add_api_route(f"/{name}", show, methods=["GET"], name=f"{name}_page")


async def _act(request: Request, svc: Service, template: str,
               act: Callable[[Service, App, Any, Session], dict[str, Any]],
               context: Callable[[Service, App], dict[str, Any]]) -> Response:
    """A form of a signed-in app: its CSRF token checked, `act` run, and the page shown
    again with what the act returned (a new key, a URL), or its error."""
    signed = await _signed_in_form(request, svc)
    if isinstance(signed, Response):
        return signed
    session, app, form = signed
    try:
        done = await run_in_threadpool(act, svc, app, form, session)
        status = 200
    except MsgtrailError as exc:
        done, status = {"error": " ".join(exc.messages)}, exc.status_code
    if "redirect" in done:
        return done["redirect"]
    shown = await run_in_threadpool(context, svc, app)
    return _render(svc, template, done.pop("session", session), status, app=app,
                   section=template.removesuffix(".html"), **shown, **done)


# --- API keys


def _keys(svc: Service, app: App) -> dict[str, Any]:
    return {"keys": svc.keys(app)}


_page("keys", "keys.html", _keys)


def _resign(svc: Service, app: App, key: str, actor: Actor) -> Session:
    """A session on the new key: rotating revoked the one this session signed in with."""
    return sessions_of(svc).sign_in(app.pk, apps.hash_key(key), actor)


@router.post("/keys/{how}")
async def keys_form(request: Request, svc: Svc, how: str) -> Response:
    def actor_of(session: Session) -> Actor:
        return _actor(request, session)

    def act(svc: Service, app: App, form: Any, session: Session) -> dict[str, Any]:
        if how == "issue":
            return {"new_key": svc.issue_key(app, actor_of(session))}
        if how == "rotate":
            key = svc.rotate_key(app, actor_of(session))
            return {"new_key": key, "session": _resign(svc, app, key, actor_of(session))}
        if how == "revoke":
            prefix = str(form.get("key_prefix", ""))
            revoked = svc.revoke_key(app, prefix, actor_of(session))
            if session.key_hash and svc.app_for_key_hash(session.key_hash) is None:
                # The key this session signed in with: signed out with it.
                response = RedirectResponse("/", status_code=303)
                sessions_of(svc).clear(response)
                return {"redirect": response}
            return {"notice": f"Revoked {revoked} key(s)."}
        return {"error": "Unknown action."}

    # (after a rotation, _act's page writes the new session's cookie)
    return await _act(request, svc, "keys.html", act, _keys)


# --- Provider connectors


def _connectors(svc: Service, app: App) -> dict[str, Any]:
    connected = set(svc.connectors(app))
    base = svc.settings.resolved_public_url()
    return {"providers": [{"source": s, "name": NAMES[s], "connected": s in connected,
                           "fields": CREDENTIALS[s], "hint": HINTS[s],
                           "url": f"{base}/webhooks/{s}/{app.app_id}",
                           "testable": s in test_event.SIGNED_HERE,
                           "recent": svc.connector_events(app, s) if s in connected else []}
                          for s in SOURCE_NAMES],
            "public_url": base, "recorded": RECORDED, "tested": TEST_EVENT}


_page("connectors", "connectors.html", _connectors)


@router.post("/connectors/{source}/{how}")
async def connector_form(request: Request, svc: Svc, source: str, how: str) -> Response:
    def act(svc: Service, app: App, form: Any, session: Session) -> dict[str, Any]:
        if source not in SOURCE_NAMES or how not in ("connect", "disconnect", "test"):
            return {"error": "Unknown provider or action."}
        if how == "test":
            if source not in test_event.SIGNED_HERE:
                return {"error": f"{NAMES[source]} signs with what only it holds: send a "
                                 "test event from its own console."}
            reached, said = svc.send_test_event(app, source)
            return {"notice": said} if reached else {"error": said}
        actor = _actor(request, session)
        if how == "disconnect":
            svc.disconnect(app, source, actor)
            return {"notice": f"{NAMES[source]} disconnected: its webhooks are refused."}
        options: dict[str, Any] = {}
        for name, _, _ in CREDENTIALS[source]:
            value = str(form.get(name, "")).strip()
            if name == "topic_arns":
                options[name] = [line.strip() for line in value.splitlines() if line.strip()]
            elif value:
                options[name] = value
        url = svc.connect(app, source, options, actor)
        return {"connected_url": url, "connected_source": source}

    return await _act(request, svc, "connectors.html", act, _connectors)


# --- Rejected webhook events


@router.get("/rejections")
def rejections_page(request: Request, svc: Svc, source: str | None = None,
                    page: int = 1) -> Response:
    found = _signed_in(request, svc)
    if found is None:
        return _to_sign_in()
    session, app = found
    source = source if source in SOURCE_NAMES else None
    page = max(1, min(page, 100_000))
    listed = svc.rejections(app, source, PAGE_SIZE, (page - 1) * PAGE_SIZE)
    for item in listed["rejections"]:
        item["shown"] = json.dumps(item["event"], indent=1)[:2000]
    return _render(svc, "rejections.html", session, app=app, section="rejections",
                   sources=SOURCE_NAMES, **listed, page=page, source=source,
                   pages=max(1, -(-listed["total_count"] // PAGE_SIZE)))


# --- The completion webhook


def _webhook(svc: Service, app: App) -> dict[str, Any]:
    url, deliveries = svc.completion_webhook(app)
    return {"webhook_url": url, "deliveries": deliveries}


_page("webhook", "webhook.html", _webhook)


@router.post("/webhook/{how}")
async def webhook_form(request: Request, svc: Svc, how: str) -> Response:
    def act(svc: Service, app: App, form: Any, session: Session) -> dict[str, Any]:
        actor = _actor(request, session)
        if how == "url":
            secret = svc.set_completion_webhook(app, str(form.get("url", "")).strip(), False,
                                                actor)
        elif how == "rotate":
            secret = svc.set_completion_webhook(app, None, True, actor)
        else:
            return {"error": "Unknown action."}
        return {"new_secret": secret, "notice": "Saved."}

    return await _act(request, svc, "webhook.html", act, _webhook)


# --- Settings


def _settings(svc: Service, app: App) -> dict[str, Any]:
    s = svc.settings
    return {"retention_days": s.activity_retention_days, "history_days": s.history_window_days,
            "file_ttl_hours": s.file_ttl_seconds / 3600,
            "audit_days": s.audit_retention_days, "rate_limit": s.export_rate_limit}


_page("settings", "settings.html", _settings)


@router.post("/settings/history")
async def history_form(request: Request, svc: Svc) -> Response:
    def act(svc: Service, app: App, form: Any, session: Session) -> dict[str, Any]:
        svc.set_history(app, form.get("history") == "on", _actor(request, session))
        return {"redirect": RedirectResponse("/settings", status_code=303)}

    return await _act(request, svc, "settings.html", act, _settings)


# --- Activity exports (the app's event feed)


def _activity(svc: Service, app: App) -> dict[str, Any]:
    _, exports = svc.activity_exports(app, PAGE_SIZE, 0)
    return {"exports": exports, "events": EVENTS}


_page("activity", "activity.html", _activity)


@router.post("/activity")
async def activity_form(request: Request, svc: Svc) -> Response:
    def act(svc: Service, app: App, form: Any, session: Session) -> dict[str, Any]:
        body: dict[str, Any] = {"format": str(form.get("format") or "csv")}
        events = [str(e) for e in form.getlist("events") if e]
        if events:
            body["events"] = events
        for name in ("since", "until", "cursor"):
            value = str(form.get(name, "")).strip()
            if value:
                body[name] = value
        svc.request_activity_export(app, _actor(request, session), body)
        return {"redirect": RedirectResponse("/activity", status_code=303)}

    return await _act(request, svc, "activity.html", act, _activity)


# --- Audit trail


@router.get("/audit")
def audit_page(request: Request, svc: Svc, before: int | None = None) -> Response:
    found = _signed_in(request, svc)
    if found is None:
        return _to_sign_in()
    session, app = found
    events, next_before = svc.audit_trail(app, PAGE_SIZE, before if before and 0 < before
                                          < 2**63 else None)
    for event in events:
        event["act"] = ACTS.get(event["action"], event["action"])
    return _render(svc, "audit.html", session, app=app, section="audit", events=events,
                   next_before=next_before, first=before is None)
