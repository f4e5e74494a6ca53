"""The dashboard in real Chromium (Debian's, driven by Playwright), against the running
service, on both configurations: the whole journey of a person, and its refusals."""

from __future__ import annotations

import csv
import gzip
import io
import json
import os
import re
import shutil
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from msgtrail.testing.service import AppCreds, Server, start_server, stop_server
from tests.helpers import create_message, send_events, send_ndjson

XSS = "<img src=x onerror=alert(1)>"
# Where screenshots go: the test's own directory, or MSGTRAIL_SCREENSHOTS (the
# docs/report.png is taken this way).
SHOTS = os.environ.get("MSGTRAIL_SCREENSHOTS")


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Chromium for this module only: Playwright's sync API runs an asyncio loop in
    the main thread while it is open, which would break later asyncio.run() callers."""
    executable = shutil.which("chromium") or shutil.which("chromium-browser")
    assert executable, "Debian's chromium is not installed: scripts/test installs it"
    with sync_playwright() as p:
        launched = p.chromium.launch(executable_path=executable, headless=True,
                                     args=["--no-sandbox"])
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(accept_downloads=True, viewport={"width": 1280, "height": 900})
    tab = context.new_page()
    problems: list[str] = []
    # Any script run from the data, anything the CSP had to block, a script error or a
    # page asset that did not load fails the test (pages answering 401/404 are meant).
    tab.on("dialog", lambda d: problems.append(f"dialog: {d.message}"))
    tab.on("pageerror", lambda e: problems.append(f"script error: {e}"))
    tab.on("console", lambda m: problems.append(m.text)
           if "Content Security Policy" in m.text or "Refused" in m.text else None)
    tab.on("response", lambda r: problems.append(f"{r.status} {r.url}")
           if "/static/" in r.url and r.status >= 400 else None)
    yield tab
    context.close()
    assert problems == [], problems


def _shot(page: Page, tmp_path: Path, name: str) -> None:
    folder = Path(SHOTS) if SHOTS else tmp_path
    folder.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(folder / f"{name}.png"), full_page=True)


def _seed(server: Server, creds: AppCreds, name: str) -> tuple[str, list[str]]:
    """A push message with activity over two hours; one recipient's external id is
    markup that must show as text."""
    now = int(time.time())
    subs = [str(uuid.UUID(int=i + 1)) for i in range(40)]
    events = []
    for i, sub in enumerate(subs):
        ext = XSS if i == 0 else f"user-{i}"
        events.append({"subscription_id": sub, "event": "sent", "timestamp": now - 7200 + i * 60,
                       "external_id": ext, "device_type": "iOS" if i % 2 else "Android"})
        if i % 4:
            events.append({"subscription_id": sub, "event": "delivered",
                           "timestamp": now - 7100 + i * 60})
        if i % 8 == 1:
            events.append({"subscription_id": sub, "event": "clicked",
                           "timestamp": now - 3600 + i * 30})
        if i % 10 == 0:
            events.append({"subscription_id": sub, "event": "failed", "timestamp": now - 7000,
                           "failure_message": "Unregistered <b>token</b>"})
    with server.client(creds) as api:
        message_id = create_message(api, creds, name=name)
        assert send_events(api, creds, message_id, events).status_code == 200
    return message_id, subs


def _sign_in(page: Page, server: Server, creds: AppCreds) -> None:
    """By keyboard, as a person without a mouse would."""
    page.goto(f"{server.base_url}/")
    page.get_by_label("App ID").focus()
    page.keyboard.type(creds.app_id)
    page.keyboard.press("Tab")
    page.keyboard.type(creds.api_key)
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(r"/messages$"))


def _download(page: Page, row_text: str, tmp_path: Path) -> bytes:
    row = page.locator("tr.job", has_text=row_text).first
    link = row.get_by_role("link", name="Download")
    expect(link).to_be_visible(timeout=60_000)
    expect(row.locator(".progress-text")).to_contain_text(" rows")
    with page.expect_download() as info:
        link.click()
    target = tmp_path / info.value.suggested_filename
    info.value.save_as(target)
    return target.read_bytes()


def test_journey_sign_in_report_export_history_sign_out(
        page: Page, server: Server, app_creds: AppCreds, tmp_path: Path) -> None:
    name = f"Spring sale {uuid.uuid4().hex[:6]}"
    message_id, subs = _seed(server, app_creds, name)
    _sign_in(page, server, app_creds)
    assert app_creds.api_key not in page.content()

    page.get_by_label("Search by name").fill(name[-6:])
    page.get_by_role("button", name="Search").click()
    page.get_by_role("link", name=name).click()
    expect(page.get_by_role("heading", level=1)).to_have_text(name)
    chart = page.get_by_role("group", name=re.compile(r"^Activity over time"))
    expect(chart).to_be_visible()
    assert "sent peaked at" in (chart.get_attribute("aria-label") or "")
    # A panel per event that happened, each on its own scale.
    for event in ("sent", "delivered", "clicked", "failed"):
        expect(chart.get_by_role("img", name=re.compile(f"^{event}: "))).to_be_visible()
    # Markup from the data is text, never markup.
    expect(page.get_by_text(XSS)).to_be_visible()
    expect(page.get_by_text("Unregistered <b>token</b>").first).to_be_visible()
    assert page.locator("main img").count() == 0
    assert app_creds.api_key not in page.content()

    page.get_by_label("Selected activity").select_option("clicked")
    page.get_by_role("button", name="Show").click()
    shown = page.locator("table.audience tbody tr")
    expect(shown).to_have_count(sum(1 for i in range(40) if i % 8 == 1))
    _shot(page, tmp_path, "report")

    page.get_by_role("button", name="Export").click()
    data = gzip.decompress(_download(page, "All recipients", tmp_path)).decode()
    rows = list(csv.DictReader(io.StringIO(data, newline="")))
    assert sorted(r["subscription_id"] for r in rows) == sorted(subs)
    assert {r["external_user_id"] for r in rows if r["subscription_id"] == subs[0]} == {XSS}

    page.get_by_role("button", name="Clicked report").click()
    report = _download(page, "Clicked report", tmp_path).decode()
    clicked = {r["player_id"] for r in csv.DictReader(io.StringIO(report, newline=""))}
    assert clicked == {s for i, s in enumerate(subs) if i % 8 == 1}
    expect(page.locator("tr.job")).to_have_count(2)
    _shot(page, tmp_path, "exports")

    # The audit trail shows what this session did, with the key's prefix only.
    page.get_by_role("link", name="Audit").click()
    rows = page.locator("table.audit tbody tr")
    expect(rows.filter(has_text="Export requested")).to_have_count(2)
    signed_in = rows.filter(has_text="Signed in")
    expect(signed_in).to_have_count(1)
    expect(signed_in).to_contain_text(app_creds.api_key[:12])
    expect(signed_in).to_contain_text("127.0.0.1")
    expect(rows.filter(has_text="File downloaded").first).to_contain_text("history")
    assert app_creds.api_key not in page.content()
    _shot(page, tmp_path, "audit")

    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("button", name="Sign in")).to_be_visible()
    page.goto(f"{server.base_url}/messages/{message_id}")
    expect(page.get_by_role("button", name="Sign in")).to_be_visible()


def test_wrong_key_shows_an_error_and_nothing_else(page: Page, server: Server,
                                                   app_creds: AppCreds) -> None:
    page.goto(f"{server.base_url}/")
    page.get_by_label("App ID").fill(app_creds.app_id)
    page.get_by_label("API key").fill(app_creds.api_key[:-3] + "xyz")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_contain_text("do not match")
    assert "xyz" not in page.content()
    page.goto(f"{server.base_url}/messages")
    expect(page.get_by_role("button", name="Sign in")).to_be_visible()


def test_another_apps_report_is_404_and_forms_need_their_token(
        page: Page, server: Server, app_creds: AppCreds) -> None:
    mine, _ = _seed(server, app_creds, "mine")
    other = server.create_app("other")
    theirs, _ = _seed(server, other, "theirs")
    _sign_in(page, server, app_creds)
    answer = page.goto(f"{server.base_url}/messages/{theirs}")
    assert answer is not None and answer.status == 404
    expect(page.get_by_role("alert")).to_contain_text("No such message")
    assert "theirs" not in page.content()
    # The session cookie alone does not make a POST: the CSRF token must come with it.
    forged = page.request.post(f"{server.base_url}/messages/{mine}/export",
                               form={"events": ""}, max_redirects=0)
    assert forged.status == 403
    forged = page.request.post(f"{server.base_url}/messages/{mine}/export",
                               form={"events": "", "csrf": "guessed"}, max_redirects=0)
    assert forged.status == 403
    page.goto(f"{server.base_url}/messages/{mine}")
    expect(page.locator("tr.job")).to_have_count(0)
    headers = page.request.get(f"{server.base_url}/messages/{mine}").headers
    assert "frame-ancestors 'none'" in headers["content-security-policy"]
    assert "script-src 'self'" in headers["content-security-policy"]
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["referrer-policy"] == "same-origin"
    cookie = next(c for c in page.context.cookies() if c["name"] == "msgtrail_session")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"


def test_pages_fit_a_360_px_screen(browser: Browser, server: Server, app_creds: AppCreds,
                                   tmp_path: Path) -> None:
    message_id, _ = _seed(server, app_creds, "A message with a rather long name to wrap " * 2)
    context = browser.new_context(viewport={"width": 360, "height": 740})
    page = context.new_page()
    try:
        _sign_in(page, server, app_creds)
        for path in ("/audit", "/messages", f"/messages/{message_id}"):
            page.goto(f"{server.base_url}{path}")
            width = page.evaluate("document.documentElement.scrollWidth")
            assert width <= 360, (path, width)
        panel = page.get_by_role("img", name=re.compile(r"^clicked: "))
        expect(panel).to_be_visible()
        # Its tick labels stay legible: at least 9 px tall on a 360 px screen.
        tick = panel.locator("text.tick").first.bounding_box()
        assert tick is not None and tick["height"] >= 9, tick
        _shot(page, tmp_path, "report-360")
    finally:
        context.close()


@pytest.fixture(scope="module")
def slow_server(tmp_path_factory: pytest.TempPathFactory, backend) -> Iterator[Server]:  # type: ignore[no-untyped-def]
    """Each export chunk (50,000 rows) takes 2 s more to write: progress to watch."""
    srv = start_server(tmp_path_factory.mktemp("slow-dashboard"), backend=backend,
                       env={"MSGTRAIL_EXPORT_CHUNK_DELAY": "2"})
    yield srv
    stop_server(srv)


def test_export_progress_is_live_then_the_file_downloads(page: Page, slow_server: Server,
                                                         tmp_path: Path) -> None:
    creds = slow_server.create_app("progress", account="progress")
    now = int(time.time())
    with slow_server.client(creds) as api:
        message_id = create_message(api, creds, name="Big send")
        send_ndjson(api, creds, message_id, [
            {"subscription_id": str(uuid.UUID(int=i + 1)), "event": "sent",
             "timestamp": now - 600} for i in range(120_000)])
    _sign_in(page, slow_server, creds)
    page.goto(f"{slow_server.base_url}/messages/{message_id}")
    page.evaluate("window.stillThisPage = true")
    assert page.locator("#numbers").get_attribute("data-pending") is not None  # counting
    _shot(page, tmp_path, "counting")
    page.get_by_label("Recipients to export").select_option("sent")
    page.get_by_role("button", name="Export").click()
    row = page.locator("tr.job").first
    expect(row).to_contain_text("Recipients who sent")
    expect(row.locator(".progress-text")).to_have_text(
        re.compile(r"^[1-9][\d,]* of 120,000 rows, about \d+ s left$"), timeout=30_000)
    expect(row.locator(".state")).to_have_text("running")
    _shot(page, tmp_path, "progress")
    data = gzip.decompress(_download(page, "Recipients who sent", tmp_path))
    assert data.count(b"\n") == 120_001
    expect(row.locator(".state")).to_have_text("ready")
    expect(row.locator(".size")).to_have_text(re.compile(r"^\d+\.\d MB$"))
    expect(row.locator(".expires")).to_have_text(re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d$"))
    # Started and followed in place: the page never reloaded. A message this big
    # (above kept.VIEW_PIVOT_EVENTS) is counted and sorted in the background while its
    # page is open: its parts fill in place.
    expect(page.locator("#numbers .funnel")).to_contain_text("120,000", timeout=60_000)
    expect(page.locator("table.audience")).to_contain_text(str(uuid.UUID(int=1)),
                                                           timeout=60_000)
    assert page.evaluate("window.stillThisPage") is True
    # A refusal shows in place too: one export at a time per account.
    page.get_by_label("Recipients to export").select_option("")
    page.get_by_role("button", name="Export").click()
    expect(page.locator("tr.job")).to_have_count(2)
    page.get_by_label("Recipients to export").select_option("clicked")
    page.get_by_role("button", name="Export").click()
    expect(page.locator("#export-error")).to_contain_text("export")
    assert page.evaluate("window.stillThisPage") is True


def test_docs_page_works_offline_and_tries_an_export(page: Page, server: Server,
                                                     app_creds: AppCreds, tmp_path: Path) -> None:
    """/docs with every request off this service cut: Swagger UI loads from msgtrail,
    Authorize takes the key, and "Try it out" on export_events gets 200."""
    message_id, _ = _seed(server, app_creds, "Docs page")
    elsewhere: list[str] = []

    def only_here(route) -> None:  # type: ignore[no-untyped-def]
        if route.request.url.startswith(server.base_url):
            route.continue_()
        else:
            elsewhere.append(route.request.url)
            route.abort()

    page.route("**/*", only_here)
    page.goto(f"{server.base_url}/docs")
    expect(page.locator(".swagger-ui .info .title")).to_contain_text("msgtrail")
    page.get_by_role("button", name="Authorize").first.click()
    dialog = page.locator(".modal-ux")
    dialog.locator("input").first.fill(app_creds.api_key)
    dialog.get_by_role("button", name="Apply credentials").click()
    dialog.get_by_role("button", name="Close").click()
    operation = page.locator(".opblock-post", has=page.locator(
        '[data-path="/notifications/{message_id}/export_events"]'))
    operation.locator(".opblock-summary").first.click()
    operation.get_by_role("button", name="Try it out").click()
    operation.locator('tr[data-param-name="message_id"] input').fill(message_id)
    operation.locator('tr[data-param-name="app_id"] input').fill(app_creds.app_id)
    operation.get_by_role("button", name="Execute").click()
    status = operation.locator(".live-responses-table tbody .response-col_status").first
    expect(status).not_to_have_text("", timeout=15_000)
    assert status.inner_text().strip() == "200", operation.locator(".live-responses-table").inner_text()
    expect(operation.locator(".live-responses-table")).to_contain_text("csv_file_url")
    _shot(page, tmp_path, "docs")
    assert elsewhere == [], elsewhere


APP_PAGES = ("/activity", "/connectors", "/rejections", "/webhook", "/keys", "/settings",
             "/audit")


def test_every_capability_has_its_page(page: Page, server: Server, tmp_path: Path) -> None:
    """Keys, connectors, rejected events, the completion webhook, settings and activity
    exports, each done from its page as a person would, with what the API then sees."""
    creds = server.create_app("pages", account="pages")
    message_id, _ = _seed(server, creds, "Pages")
    _sign_in(page, server, creds)
    for path in APP_PAGES:
        page.goto(f"{server.base_url}{path}")
        expect(page.get_by_role("heading", level=1)).to_be_visible()
        assert creds.api_key not in page.content(), path
        _shot(page, tmp_path, path.strip("/"))

    # Connectors: Postmark, its URL (password in it) shown once; then a webhook sent to
    # it with no msgtrail ids shows among the rejected events.
    page.goto(f"{server.base_url}/connectors")
    page.locator("#h-postmark").locator("xpath=..").get_by_role("button", name="Connect").click()
    shown = page.locator(".once code.secret")
    expect(shown).to_contain_text(f"/webhooks/postmark/{creds.app_id}")
    url = shown.inner_text()
    parts = urlsplit(url)
    r = httpx.post(f"{server.base_url}{parts.path}", auth=(str(parts.username),
                                                           str(parts.password)),
                   json={"RecordType": "Delivery", "MessageID": "x", "Metadata": {},
                         "Recipient": "a@example.com", "DeliveredAt": "2026-01-02T03:04:05Z"})
    assert r.status_code == 200 and r.json()["rejected"] == 1
    page.goto(f"{server.base_url}/connectors")
    expect(page.locator("#h-postmark")).to_contain_text("connected")
    assert str(parts.password) not in page.content()  # shown once, never again
    # Its last events, with their outcome; a test event goes the providers' way
    # (signed, to the public URL) and is listed, but neither recorded nor rejected.
    postmark = page.locator("#h-postmark").locator("xpath=..")
    expect(postmark.locator("table.recent tbody tr")).to_have_count(1)
    expect(postmark.locator("table.recent")).to_contain_text("no msgtrail_message_id")
    postmark.get_by_role("button", name="Send a test event").click()
    expect(page.locator("p.notice")).to_contain_text("was verified (answered 200)")
    postmark = page.locator("#h-postmark").locator("xpath=..")
    expect(postmark.locator("table.recent tbody tr")).to_have_count(2)
    expect(postmark.locator("table.recent tbody tr").first).to_contain_text(
        "test event: verified, not recorded")
    _shot(page, tmp_path, "connectors-tested")
    page.goto(f"{server.base_url}/rejections?source=postmark")
    expect(page.locator("table.rejections tbody tr")).to_have_count(1)
    expect(page.locator("table.rejections")).to_contain_text("no msgtrail_message_id")

    # The completion webhook: a URL, its secret shown once.
    page.goto(f"{server.base_url}/webhook")
    page.get_by_label("URL").fill("https://93.184.216.34/hooks")
    page.get_by_role("button", name="Save").click()
    expect(page.locator(".once code.secret")).to_contain_text("whsec_")
    page.get_by_label("URL").fill("http://127.0.0.1:9/x")  # private: refused, said why
    page.get_by_role("button", name="Save").click()
    expect(page.locator("p.error")).to_be_visible()

    # Settings: history off, and the API refuses history reports after it.
    page.goto(f"{server.base_url}/settings")
    page.get_by_label("Send History via API").uncheck()
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_label("Send History via API")).not_to_be_checked()
    with server.client(creds) as api:
        refused = api.post(f"/notifications/{message_id}/history",
                           json={"app_id": creds.app_id, "events": "sent"})
        assert refused.status_code == 400 and "turned off" in refused.text

    # An activity export in JSON Lines, clicked only: listed with its files once ready.
    page.goto(f"{server.base_url}/activity")
    page.get_by_label("Format").select_option("jsonl")
    page.get_by_label("clicked").check()
    page.get_by_role("button", name="Export").click()
    expect(page).to_have_url(re.compile(r"/activity$"))
    for _ in range(50):
        if page.locator("table.activity").get_by_role("link", name="Download").count():
            break
        page.wait_for_timeout(200)
        page.reload()
    link = page.locator("table.activity").get_by_role("link", name="Download").first
    data = gzip.decompress(httpx.get(str(link.get_attribute("href"))).content).decode()
    assert {json.loads(line)["event"] for line in data.splitlines()} == {"clicked"}

    # Keys: issue a second one (shown once, works), rotate (this page stays signed in),
    # and the first key no longer opens the API.
    page.goto(f"{server.base_url}/keys")
    page.get_by_role("button", name="Issue another key").click()
    second = page.locator(".once code.secret").inner_text()
    page.get_by_role("button", name="Rotate").click()
    third = page.locator(".once code.secret").inner_text()
    assert len({creds.api_key, second, third}) == 3
    page.goto(f"{server.base_url}/keys")
    expect(page.get_by_role("heading", level=1)).to_have_text("API keys")  # still signed in
    assert second not in page.content() and third not in page.content()

    def status(key: str) -> int:
        return httpx.get(f"{server.base_url}/notifications", params={"app_id": creds.app_id},
                         headers={"Authorization": f"Key {key}"}).status_code

    assert (status(creds.api_key), status(second), status(third)) == (401, 401, 200)
    # Revoking the key this page signed in with signs it out.
    page.locator("table.keys tr", has_text=third[:12]).get_by_role("button",
                                                                  name="Revoke").click()
    expect(page.get_by_role("button", name="Sign in")).to_be_visible()
    assert status(third) == 401
    page.goto(f"{server.base_url}/audit")
    expect(page.get_by_role("button", name="Sign in")).to_be_visible()


def test_app_pages_refuse_forged_forms_and_fit_360_px(browser: Browser, server: Server,
                                                      tmp_path: Path) -> None:
    creds = server.create_app("narrow", account="narrow")
    context = browser.new_context(viewport={"width": 360, "height": 740})
    page = context.new_page()
    try:
        _sign_in(page, server, creds)
        # A connector with its last events listed (a message id, an outcome) fits too.
        page.goto(f"{server.base_url}/connectors")
        postmark = page.locator("#h-postmark").locator("xpath=..")
        postmark.get_by_role("button", name="Connect").click()
        page.locator("#h-postmark").locator("xpath=..").get_by_role(
            "button", name="Send a test event").click()
        expect(page.locator("table.recent tbody tr")).to_have_count(1)
        for path in APP_PAGES:
            page.goto(f"{server.base_url}{path}")
            width = page.evaluate("document.documentElement.scrollWidth")
            assert width <= 360, (path, width)
            if path == "/connectors":
                _shot(page, tmp_path, "connectors-360")
        _shot(page, tmp_path, "audit-360")
        # Each form without its page's token: refused, nothing done.
        cookies = {c["name"]: c["value"] for c in context.cookies()}
        for action in ("/keys/rotate", "/keys/issue", "/connectors/postmark/connect",
                       "/connectors/postmark/test",
                       "/webhook/url", "/settings/history", "/activity"):
            forged = httpx.post(f"{server.base_url}{action}", cookies=cookies,
                                data={"csrf": "guess", "url": "https://93.184.216.34/x"})
            assert forged.status_code == 403, action
        with server.client(creds) as api:
            assert api.get("/notifications", params={"app_id": creds.app_id}).status_code == 200
            trail = api.get(f"/apps/{creds.app_id}/audit").json()["events"]
        assert [e["action"] for e in trail] == ["connector.connected", "dashboard.signed_in",
                                                "app.created"]
    finally:
        context.close()


def test_an_email_report_fits_and_finds_one_recipient(page: Page, server: Server,
                                                      tmp_path: Path) -> None:
    """Every email event a column, on a 1280 px screen without sideways scrolling; a
    support question answered by finding one recipient by external id."""
    creds = server.create_app("mail", account="mail")
    now = int(time.time())
    subs = [str(uuid.UUID(int=i + 1)) for i in range(60)]
    events: list[dict[str, object]] = []
    for i, sub in enumerate(subs):
        events.append({"subscription_id": sub, "event": "sent", "timestamp": now - 3600,
                       "external_id": f"customer-{i}", "device_type": "Email"})
        for j, name in enumerate(("delivered", "opened", "clicked", "bounced",
                                  "unsubscribed", "reported_spam")):
            if i % (j + 2) == 0:
                events.append({"subscription_id": sub, "event": name,
                               "timestamp": now - 3000 + j * 60})
    with server.client(creds) as api:
        message_id = create_message(api, creds, channel="email", name="Newsletter")
        assert send_events(api, creds, message_id, events).status_code == 200
    _sign_in(page, server, creds)
    page.goto(f"{server.base_url}/messages/{message_id}")
    assert page.evaluate("document.documentElement.scrollWidth") <= 1280
    expect(page.get_by_role("img", name=re.compile(r"^opened: "))).to_be_visible()
    rows = page.locator("table.audience tbody tr")
    expect(rows).to_have_count(50)
    page.get_by_role("link", name="Next 50").click()
    expect(rows).to_have_count(10)
    page.get_by_label("Find a recipient").fill("customer-42")
    page.get_by_role("button", name="Show").click()
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text(subs[42])
    _shot(page, tmp_path, "email-find")
