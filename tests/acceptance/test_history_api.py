"""Message history: the seed's contract through the official SDK, and its email."""

from __future__ import annotations

import email
import hashlib
import re
import uuid

import httpx
import pytest
from aiosmtpd.controller import Controller
from onesignal.model.get_notification_history_request_body import (
    GetNotificationHistoryRequestBody,
)

from msgtrail.testing.service import free_port, run_cli, start_server, stop_server
from tests.helpers import create_message, event, export, export_status, send_events, wait_for

HEADER = "player_id,onesignal_id,external_id,target_channel,timestamp"


def history(client: httpx.Client, creds, message_id: str, **body: object) -> httpx.Response:
    return client.post(f"/notifications/{message_id}/history",
                       json={"app_id": creds.app_id, **body})


def download(url: str) -> str:
    """Poll a history URL: 403 AccessDenied until the report is ready, then the CSV."""
    def ready() -> str | None:
        r = httpx.get(url, follow_redirects=True)  # S3 mode: a redirect to the store
        if r.status_code == 200:
            return r.text
        assert r.status_code == 403 and "<Code>AccessDenied</Code>" in r.text, r.text
        return None
    return wait_for(ready)


def test_sdk_history_of_sent_and_clicked(server, app_creds) -> None:
    subs = sorted(str(uuid.uuid4()) for _ in range(3))
    osid = str(uuid.uuid4())
    with server.client(app_creds) as client:
        message_id = create_message(client, app_creds, "email")
        send_events(client, app_creds, message_id, [
            event(subs[0], "sent", 1_790_000_000, onesignal_id=osid, external_id='say "hi"'),
            event(subs[1], "sent", 1_790_000_001, external_id="user-1"),
            event(subs[0], "clicked", 1_790_000_500),
            event(subs[2], "clicked", 1_790_000_600)])  # a click whose send went unreported
    api = server.sdk(app_creds)
    sent = api.get_notification_history(message_id, GetNotificationHistoryRequestBody(
        events="sent", app_id=app_creds.app_id))
    assert sent.success is True
    assert download(sent.destination_url).splitlines() == [
        HEADER,
        f'"{subs[0]}","{osid}","say ""hi""","email",""',
        f'"{subs[1]}","","user-1","email",""']
    clicked = api.get_notification_history(message_id, GetNotificationHistoryRequestBody(
        events="clicked", app_id=app_creds.app_id))
    assert download(clicked.destination_url).splitlines() == [
        HEADER,
        f'"{subs[0]}","{osid}","say ""hi""","email","1790000500"',
        f'"{subs[2]}","","","email","1790000600"']


def test_report_is_403_until_ready_and_shares_the_account_slot(tmp_path, backend) -> None:
    srv = start_server(tmp_path, backend=backend, env={"MSGTRAIL_EXPORT_CHUNK_DELAY": "2"})
    try:
        creds = srv.create_app()
        with srv.client(creds) as client:
            message_id = create_message(client, creds)
            send_events(client, creds, message_id, [event() for _ in range(5)])
            r = history(client, creds, message_id, events="sent")
            assert r.status_code == 200 and r.json()["success"] is True
            url = r.json()["destination_url"]
            first = httpx.get(url)
            assert first.status_code == 403
            assert first.headers["content-type"] == "application/xml"
            assert "<Code>AccessDenied</Code>" in first.text
            # The same request while it runs answers the same URL; an export waits.
            assert history(client, creds, message_id, events="sent").json() == r.json()
            busy = export(client, creds, message_id)
            assert busy.status_code == 429 and int(busy.headers["Retry-After"]) >= 1
            assert httpx.get(r.json()["manifest_url"]).status_code == 404  # not before
            assert len(download(url).splitlines()) == 6
            manifest = httpx.get(r.json()["manifest_url"]).json()
            assert manifest["sha256"] == hashlib.sha256(httpx.get(url, follow_redirects=True).content).hexdigest()
            assert (manifest["rows"], manifest["format"], manifest["compression"]) == (
                5, "csv", "none")
            assert manifest["filter"]["events"] == ["sent"]
            assert [c["name"] for c in manifest["columns"]] == HEADER.split(",")
    finally:
        stop_server(srv)


def test_bad_history_requests(server, app_creds) -> None:
    with server.client(app_creds) as client:
        message_id = create_message(client, app_creds)
        r = history(client, app_creds, message_id, events="opens")
        assert r.status_code == 400
        assert r.json() == {"errors": ['events: must be one of sent, clicked (got "opens")'],
                            "success": False}
        r = history(client, app_creds, message_id, events="sent", email="not-an-address")
        assert r.status_code == 400
        assert r.json() == {"errors": ["param `email` must be a valid email"], "success": False}
        r = history(client, app_creds, message_id, events="sent", email="ops@example.com")
        assert r.status_code == 400 and "SMTP" in r.json()["errors"][0]
        r = client.post(f"/notifications/{message_id}/history", json={"events": "sent"})
        assert r.status_code == 400 and r.json()["errors"] == ["app_id is required (a UUID)"]
        r = history(client, app_creds, str(uuid.uuid4()), events="sent")
        assert r.status_code == 404
        # Nothing was queued by the refused requests.
        assert history(client, app_creds, message_id, events="sent").status_code == 200


def test_history_switch_per_app(server, app_creds) -> None:
    run_cli(server.data_dir, "apps", "update", app_creds.app_id, "--history", "off",
            env=server.env)
    with server.client(app_creds) as client:
        message_id = create_message(client, app_creds)
        r = history(client, app_creds, message_id, events="clicked")
        assert r.status_code == 400
        assert f"msgtrail apps update {app_creds.app_id} --history on" in r.json()["errors"][0]
        run_cli(server.data_dir, "apps", "update", app_creds.app_id, "--history", "on",
                env=server.env)
        assert history(client, app_creds, message_id, events="clicked").status_code == 200


class Inbox:
    """An SMTP server's handler: refuses the first `refuse` messages with a 451."""

    def __init__(self, refuse: int = 0) -> None:
        self.refuse = refuse
        self.messages: list[email.message.Message] = []

    async def handle_DATA(self, server, session, envelope) -> str:  # type: ignore[no-untyped-def]
        if self.refuse > 0:
            self.refuse -= 1
            return "451 4.3.0 Try again later"
        self.messages.append(email.message_from_bytes(envelope.content))
        return "250 Message accepted for delivery"


@pytest.fixture
def smtp():
    inbox = Inbox(refuse=1)
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    yield inbox, controller.port
    controller.stop()


def test_report_link_is_emailed_and_a_failed_send_is_retried(tmp_path, smtp, backend) -> None:
    inbox, port = smtp
    srv = start_server(tmp_path, backend=backend, env={"MSGTRAIL_SMTP_HOST": "127.0.0.1",
                                      "MSGTRAIL_SMTP_PORT": str(port),
                                      "MSGTRAIL_SMTP_SECURITY": "none",
                                      "MSGTRAIL_SMTP_SENDER": "reports@msgtrail.test",
                                      "MSGTRAIL_EMAIL_RETRY_SECONDS": "1"})
    try:
        creds = srv.create_app()
        with srv.client(creds) as client:
            message_id = create_message(client, creds)
            sub = str(uuid.uuid4())
            send_events(client, creds, message_id, [event(sub, "sent"), event(sub, "clicked")])
            r = history(client, creds, message_id, events="clicked", email="Ops@Example.com")
            assert r.status_code == 200
            export_id = r.json()["export_id"]
            # The first send is refused (451): recorded on the job, then tried again.
            failed = wait_for(lambda: (s := export_status(client, creds, message_id, export_id))
                              .get("email_error") and s)
            assert "451" in failed["email_error"] and failed["email_state"] == "pending"
            wait_for(lambda: inbox.messages, timeout=30)
            # (the server has the mail before the worker records it sent)
            status = wait_for(lambda: (s := export_status(client, creds, message_id, export_id))
                              .get("email_state") == "sent" and s)
            assert "email_error" not in status
        [mail] = inbox.messages
        assert mail["To"] == "Ops@example.com" and mail["From"] == "reports@msgtrail.test"
        link = re.search(r"http://\S+", mail.get_payload(decode=True).decode()).group(0)
        assert link == r.json()["destination_url"]
        lines = httpx.get(link, follow_redirects=True).text.splitlines()
        assert lines[0] == HEADER and lines[1].startswith(f'"{sub}"')
    finally:
        stop_server(srv)
