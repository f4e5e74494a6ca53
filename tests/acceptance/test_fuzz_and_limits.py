"""Through the running service: a property-based fuzzer, driven by /openapi.json, finds
no request that gets a 5xx; an oversized body is answered 413 even to a client that
sends it whole before reading."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import urllib.error
import urllib.request
import uuid
from pathlib import Path

from msgtrail.testing.providers import SendGrid
from msgtrail.testing.service import AppCreds, Server, run_cli
from tests.helpers import create_message, event, send_events

# Every operation is reached well within this (the test checks it); a longer run finds
# more: MSGTRAIL_FUZZ_SECONDS=600 before a release.
FUZZ_SECONDS = int(os.environ.get("MSGTRAIL_FUZZ_SECONDS", "20"))
SCHEMATHESIS_CONFIG = Path(__file__).with_name("schemathesis.toml")


def test_no_request_gets_a_5xx(server: Server, app_creds: AppCreds, tmp_path) -> None:
    """Schemathesis generates valid and invalid requests from the OpenAPI document
    (ids of a real app and message, so that requests get past 404) for a fixed time;
    any 5xx fails the run, and so this test."""
    with server.client(app_creds) as client:
        message_id = create_message(client, app_creds)
    # Every webhook source connected, so that fuzzed webhooks reach the signature checks
    # and the parsers behind them (OneSignal's is passed by the fuzzer's own key).
    for source, *credential in (
            ["onesignal"], ["postmark", "--password", "fuzz"],
            ["mailgun", "--signing-key", "fuzz"], ["twilio", "--auth-token", "fuzz"],
            ["ses", "--topic-arn", "arn:aws:sns:eu-west-1:123456789012:fuzz"],
            ["sendgrid", "--public-key", SendGrid().options()["public_key"]]):
        run_cli(server.data_dir, "apps", "connect", app_creds.app_id, source, *credential,
                env=server.env)
    st = Path(sys.executable).with_name("st")
    result = subprocess.run(
        [str(st), "--config-file", str(SCHEMATHESIS_CONFIG), "run",
         f"{server.base_url}/openapi.json", "--checks", "not_a_server_error",
         "-H", f"Authorization: Key {app_creds.api_key}", "--max-time", str(FUZZ_SECONDS),
         "--seed", "20261124", "--report", "junit", "--report-dir", str(tmp_path)],
        capture_output=True, text=True, timeout=FUZZ_SECONDS + 120,
        env={**os.environ, "FUZZ_APP_ID": app_creds.app_id, "FUZZ_MESSAGE_ID": message_id})
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    assert "generated" in result.stdout and "Server error" not in result.stdout
    # The time given was enough to reach every operation of the document.
    selected = re.search(r"Selected: (\d+)/(\d+)", result.stdout)
    tested = re.search(r"Tested: (\d+)", result.stdout)
    assert selected and tested, result.stdout[-3000:]
    assert selected[1] == selected[2] == tested[1], result.stdout[-3000:]


def test_oversized_body_without_expect_gets_413_and_stores_nothing(
        server: Server, app_creds: AppCreds) -> None:
    with server.client(app_creds) as client:
        message_id = create_message(client, app_creds)
        sub = str(uuid.uuid4())
        big = {"events": [event(sub, "sent", failure_message="x" * 2000)] * 5_500}
        body = json.dumps(big).encode()
        assert len(body) > 10 * 1024 * 1024
        # urllib sends the whole body first, with no `Expect: 100-continue`.
        request = urllib.request.Request(
            f"{server.base_url}/notifications/{message_id}/events?app_id={app_creds.app_id}",
            data=body, method="POST", headers={"Authorization": f"Key {app_creds.api_key}",
                                                "Content-Type": "application/json"})
        try:
            urllib.request.urlopen(request, timeout=60)
            raise AssertionError("an oversized body was accepted")
        except urllib.error.HTTPError as answer:
            assert answer.code == 413
            assert json.loads(answer.read()) == {
                "errors": [f"body: larger than {10 * 1024 * 1024} bytes"]}
        doc = client.get(f"/notifications/{message_id}", params={"app_id": app_creds.app_id})
        assert doc.json()["successful"] == 0 and doc.json()["failed"] == 0
        # The connection is usable, and a body within the limit still goes in.
        assert send_events(client, app_creds, message_id,
                           [event(sub, "sent")]).json()["accepted"] == 1
