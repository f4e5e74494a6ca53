"""Logs of a real `msgtrail serve --log-format json`: one JSON object per line, every
request's line with its id (returned as X-Request-ID), every job's lines with its id,
app and message, and none of the secrets the run used."""

from __future__ import annotations

import json
import re
import time
import uuid

import httpx

from msgtrail.testing import providers
from msgtrail.testing.service import run_cli, start_server, stop_server
from tests.helpers import create_message, download_when_ready, event, export, send_events


def test_json_lines_with_request_and_job_ids_and_no_secrets(tmp_path, backend) -> None:
    srv = start_server(tmp_path, backend=backend, env={"MSGTRAIL_LOG_FORMAT": "json",
                                                       "MSGTRAIL_LOG_REQUESTS": "all"})
    try:
        creds = srv.create_app()
        with srv.client(creds) as client:
            message_id = create_message(client, creds)
            send_events(client, creds, message_id, [event(), event()])
            r = client.get("/notifications", params={"app_id": creds.app_id},
                           headers={"X-Request-ID": "support-ticket-42"})
            assert r.headers["X-Request-ID"] == "support-ticket-42"
            # An id that is not a sane one is replaced, not echoed.
            r = client.get("/livez", headers={"X-Request-ID": "x" * 65})
            assert re.fullmatch("[0-9a-f]{32}", r.headers["X-Request-ID"])
            # Signed provider webhooks, one accepted, one forged: their signatures,
            # credentials and the completion webhook's secret are secrets too.
            sendgrid = providers.SendGrid()
            run_cli(tmp_path, "apps", "connect", creds.app_id, "sendgrid", "--public-key",
                    sendgrid.options()["public_key"], env=srv.env)
            signed = sendgrid.calls(creds.app_id, [providers.Happened(
                "delivered", message_id, str(uuid.uuid4()), int(time.time()))], srv.base_url)
            signatures = [c.headers["X-Twilio-Email-Event-Webhook-Signature"] for c in signed]
            for call in signed:
                assert httpx.post(srv.base_url + call.path, headers=call.headers,
                                  content=call.body).status_code == 200
            forged = {**signed[0].headers, "X-Twilio-Email-Event-Webhook-Signature":
                      signatures[0][:-8] + "AAAAAAA="}
            assert httpx.post(srv.base_url + signed[0].path, headers=forged,
                              content=signed[0].body).status_code == 401
            doc = json.loads(run_cli(tmp_path, "apps", "connect", creds.app_id, "postmark",
                                     "--json", env=srv.env))
            password = str(httpx.URL(doc["url"]).password)
            hook = json.loads(run_cli(tmp_path, "apps", "update", creds.app_id,
                                      "--webhook-url", "http://127.0.0.1:9/done", "--json",
                                      env={**srv.env, "MSGTRAIL_WEBHOOK_ALLOW_PRIVATE": "1"})
                              )["webhook_secret"]
            answer = export(client, creds, message_id).json()
            url, export_id = answer["csv_file_url"], answer["export_id"]
            download_when_ready(url)
            # The dashboard: its session cookie and CSRF token are secrets too.
            with httpx.Client(base_url=srv.base_url) as web:
                csrf = re.search(r'name="csrf" value="([^"]+)"', web.get("/").text)
                assert csrf is not None
                web.post("/signin", data={"csrf": csrf.group(1), "app_id": creds.app_id,
                                          "api_key": creds.api_key})
                cookies = [c.value for c in web.cookies.jar]
                assert cookies and web.get("/messages").status_code == 200
    finally:
        stop_server(srv)
    text = (tmp_path / f"serve-{srv.base_url.rsplit(':', 1)[1]}.log").read_text()
    # (stdout, in the same file, says where it listens: not a log line)
    assert [line for line in text.splitlines() if not line.startswith("{")] == [
        f"msgtrail listening on {srv.base_url}"]
    lines = [json.loads(line) for line in text.splitlines() if line.startswith("{")]
    access = [line for line in lines if line["logger"] == "msgtrail.access"]
    mine = [line for line in access if line["request_id"] == "support-ticket-42"]
    assert [(m["method"], m["path"], m["status"]) for m in mine] == [
        ("GET", "/notifications", 200)]
    assert all(re.fullmatch(r"/exports/\*\*\*/.+", a["path"])
               for a in access if a["path"].startswith("/exports/"))
    job_lines = [line for line in lines if line.get("job_id") == export_id]
    assert job_lines and all(line["app_id"] == creds.app_id
                             and line["message_id"] == message_id for line in job_lines)
    token = httpx.URL(url).path.split("/")[2] if "/exports/" in url else None
    assert any(line.get("status") == 401 and "/webhooks/sendgrid/" in line["path"]
               for line in access)  # the forged request is logged, without its signature
    for secret in [creds.api_key, csrf.group(1), *cookies, *([token] if token else []),
                   *signatures, forged["X-Twilio-Email-Event-Webhook-Signature"],
                   sendgrid.options()["public_key"], password, hook]:
        assert secret not in text, "a secret was logged"


def test_by_default_only_failed_requests_get_a_line(tmp_path) -> None:
    srv = start_server(tmp_path)
    try:
        with httpx.Client(base_url=srv.base_url) as client:
            assert client.get("/livez").status_code == 200
            assert client.get("/notifications", params={"app_id": "x"}).status_code == 401
    finally:
        stop_server(srv)
    text = (tmp_path / f"serve-{srv.base_url.rsplit(':', 1)[1]}.log").read_text()
    access = [line for line in text.splitlines() if " msgtrail.access: " in line]
    assert len(access) == 1 and "GET /notifications 401" in access[0]
    assert re.search(r"request_id=[0-9a-f]{32}$", access[0])
