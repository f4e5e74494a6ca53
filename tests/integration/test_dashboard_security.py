"""The dashboard's sessions and forms as an attacker would try them, in-process on both
configurations: a cookie replayed after sign-out or after its key was rotated or
revoked, and forms larger than any page sends."""

from __future__ import annotations

import uuid

import httpx
from sqlalchemy import func, select

from msgtrail import apps
from msgtrail.db.schema import connector_events, dashboard_sessions, jobs
from msgtrail.ingest import connections
from msgtrail.vault import Vault
from msgtrail.web.dashboard.session import COOKIE
from msgtrail.web.dashboard.views import FORM_MAX_BYTES
from tests.integration.conftest import InProcess, csrf_of


def _as(api: InProcess, cookie: str, path: str, **form: str) -> httpx.Response:
    """A request carrying exactly this cookie (a replay), and nothing else of the
    browser's."""
    api.client.cookies.clear()
    api.client.cookies.set(COOKIE, cookie)
    try:
        if form:
            return api.client.post(path, data=form, follow_redirects=False)
        return api.client.get(path, follow_redirects=False)
    finally:
        api.client.cookies.clear()


def _sessions(api: InProcess) -> int:
    with api.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(dashboard_sessions)
                                ).scalar_one())


def _jobs(api: InProcess) -> int:
    with api.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(jobs)).scalar_one())


def test_a_cookie_replayed_after_sign_out_opens_nothing(api: InProcess) -> None:
    message_id = api.create_message()
    cookie, csrf = api.sign_in()
    assert _as(api, cookie, f"/messages/{message_id}").status_code == 200
    r = _as(api, cookie, "/signout", csrf=csrf)
    assert r.status_code == 303 and r.headers["location"] == "/"
    assert _sessions(api) == 0
    for path in ("/messages", f"/messages/{message_id}"):
        r = _as(api, cookie, path)
        assert r.status_code == 303 and r.headers["location"] == "/", path
    r = _as(api, cookie, f"/messages/{message_id}/export", csrf=csrf, events="")
    assert r.status_code == 303 and r.headers["location"] == "/" and _jobs(api) == 0
    # Another session of the same key lives on: only the one signed out ended.
    other, _ = api.sign_in()
    first, csrf = api.sign_in()
    _as(api, first, "/signout", csrf=csrf)
    assert _as(api, other, "/messages").status_code == 200


def test_rotating_or_revoking_the_key_ends_its_sessions(api: InProcess) -> None:
    cookie, _ = api.sign_in()
    with api.engine.begin() as conn:
        new_key = apps.rotate_key(conn, api.app_id)
    assert _sessions(api) == 0
    assert _as(api, cookie, "/messages").headers["location"] == "/"
    cookie, _ = api.sign_in(new_key)
    kept, _ = api.sign_in(new_key)
    with api.engine.begin() as conn:
        assert apps.revoke_keys(conn, api.app_id, new_key[:12]) == 1
    for replayed in (cookie, kept):
        assert _as(api, replayed, "/messages").headers["location"] == "/"
    assert _sessions(api) == 0


def test_a_forged_or_expired_cookie_opens_nothing(api: InProcess) -> None:
    cookie, _ = api.sign_in()
    assert _as(api, cookie[:-2] + "xx", "/messages").headers["location"] == "/"
    with api.engine.begin() as conn:
        conn.execute(dashboard_sessions.update().values(expires_at=1))
    assert _as(api, cookie, "/messages").headers["location"] == "/"


def test_forms_larger_than_a_page_sends_are_413_and_do_nothing(api: InProcess) -> None:
    message_id = api.create_message()
    api.client.cookies.clear()
    token = csrf_of(api.client.get("/"))
    padding = "x" * FORM_MAX_BYTES
    r = api.client.post("/signin", data={"csrf": token, "app_id": api.app_id,
                                         "api_key": api.key, "pad": padding},
                        follow_redirects=False)
    assert r.status_code == 413 and "larger" in r.text
    assert _sessions(api) == 0
    # A declared size past the limit is refused before the body is read.
    r = api.client.post("/signin", content=b"csrf=" + token.encode(),
                        headers={"content-type": "application/x-www-form-urlencoded",
                                 "content-length": str(100 * FORM_MAX_BYTES),
                                 "expect": "100-continue"}, follow_redirects=False)
    assert r.status_code == 413 and _sessions(api) == 0
    cookie, csrf = api.sign_in()
    for path in (f"/messages/{message_id}/export", f"/messages/{message_id}/history",
                 "/signout"):
        r = _as(api, cookie, path, csrf=csrf, events="sent", pad=padding)
        assert r.status_code == 413, path
    assert _jobs(api) == 0 and _sessions(api) == 1
    # Just under the limit is an ordinary form.
    r = _as(api, cookie, f"/messages/{message_id}/export", csrf=csrf, events="",
            pad="x" * (FORM_MAX_BYTES - 200))
    assert r.status_code == 303 and _jobs(api) == 1


def test_a_form_that_is_not_url_encoded_is_refused(api: InProcess) -> None:
    api.client.cookies.clear()
    token = csrf_of(api.client.get("/"))
    r = api.client.post("/signin", files={"csrf": (None, token), "app_id": (None, api.app_id),
                                          "api_key": (None, api.key)},
                        follow_redirects=False)
    assert r.status_code == 403 and _sessions(api) == 0


def test_another_apps_message_id_is_an_unknown_one(api: InProcess) -> None:
    """Through the OneSignal stream, an id that another app holds behaves exactly as an
    id nobody holds: the message is created in this app, and the other is untouched."""
    with api.engine.begin() as conn:
        other, other_key = apps.create_app(conn, "other")
    theirs = api.client.post("/notifications", headers={"Authorization": f"Key {other_key}"},
                             json={"app_id": other.app_id, "name": "theirs",
                                   "target_channel": "email"}).json()["id"]
    nobodys = str(uuid.uuid4())
    with api.engine.begin() as conn:
        connections.connect(conn, Vault(api.settings), api.app_id, "onesignal")
    answers = []
    for message_id in (nobodys, theirs):
        body = {"event.kind": "message.push.sent", "event.id": str(uuid.uuid4()),
                "message.id": message_id, "message.name": "mine",
                "event.subscription_id": str(uuid.uuid4())}
        r = api.client.post(f"/webhooks/onesignal/{api.app_id}", json=body)
        answers.append((r.status_code, r.json()))
    assert answers[0] == answers[1] == (200, {"accepted": 1, "rejected": 0})
    for message_id in (nobodys, theirs):
        doc = api.client.get(f"/notifications/{message_id}", params={"app_id": api.app_id})
        assert doc.status_code == 200 and doc.json()["name"] == "mine"
        assert doc.json()["target_channel"] == "push"
    doc = api.client.get(f"/notifications/{theirs}", params={"app_id": other.app_id},
                         headers={"Authorization": f"Key {other_key}"}).json()
    assert (doc["name"], doc["target_channel"], doc["successful"]) == ("theirs", "email", 0)
    assert len(api.export(theirs)) == 1


def test_a_test_event_msgtrail_cannot_sign_or_of_no_connector_changes_nothing(
        api: InProcess) -> None:
    """'Send a test event' for a provider msgtrail cannot sign as, or one not connected,
    says why and connects or records nothing."""
    cookie, token = api.sign_in()
    for source in ("onesignal", "sendgrid", "ses", "postmark"):
        r = _as(api, cookie, f"/connectors/{source}/test", csrf=token)
        assert r.status_code in (200, 404), (source, r.status_code)
        assert 'class="error"' in r.text, source
    with api.engine.connect() as conn:
        app = apps.get_app(conn, api.app_id)
        assert connections.sources(conn, app) == []
        assert conn.execute(select(func.count()).select_from(connector_events)).scalar() == 0
