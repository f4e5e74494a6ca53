"""Completion webhooks, on both configurations: a signed notice when an export is
ready, failed or expired, checked by the client's verify_webhook and by a plain HMAC;
retries with the same id; giving up; and URLs msgtrail refuses to call (SSRF)."""

from __future__ import annotations

import hashlib
import hmac
import json
import socket
import ssl
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import trustme
from prometheus_client import REGISTRY

from msgtrail import apps
from msgtrail.client import verify_webhook
from msgtrail.errors import BadRequest
from msgtrail.files import open_store
from msgtrail.notify import export_webhooks
from msgtrail.runtime import retention
from msgtrail.settings import Settings
from msgtrail.testing.backends import Embedded, Scale
from msgtrail.vault import Vault
from tests.helpers import Receiver
from tests.integration.conftest import InProcess


@pytest.fixture(autouse=True)
def _quick_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    """Set before the service starts: loopback receivers, retries in tenths of seconds."""
    monkeypatch.setenv("MSGTRAIL_WEBHOOK_ALLOW_PRIVATE", "1")
    monkeypatch.setenv("MSGTRAIL_WEBHOOK_RETRY_SECONDS", "0.05")
    monkeypatch.setenv("MSGTRAIL_MAX_ATTEMPTS", "1")


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver([200])
    yield r
    r.server.shutdown()


def _hook(api: InProcess, url: str) -> str:
    with api.engine.begin() as conn:
        _, secret = apps.set_webhook(conn, Vault(api.settings), api.app_id, url, False)
    assert secret and secret.startswith("whsec_")
    return secret


def _plain_hmac_ok(secret: str, body: bytes, header: str) -> bool:
    """The check a receiver writes by hand from the documented scheme."""
    fields = dict(part.split("=", 1) for part in header.split(","))
    expected = hmac.new(secret.encode(), f"{fields['t']}.".encode() + body,
                        hashlib.sha256).hexdigest()
    return abs(time.time() - int(fields["t"])) < 300 and hmac.compare_digest(
        expected, fields["v1"])


def _status(api: InProcess, message_id: str, export_id: str) -> dict[str, Any]:
    return dict(api.client.get(f"/notifications/{message_id}/export_events/{export_id}",
                               params={"app_id": api.app_id}).json())


def _wait_state(api: InProcess, message_id: str, export_id: str, state: str,
                attempts: int = 1) -> dict[str, Any]:
    deadline = time.monotonic() + 20
    while ((doc := _status(api, message_id, export_id)).get("webhook_state") != state
           or doc["webhook_attempts"] < attempts):
        assert time.monotonic() < deadline, doc
        time.sleep(0.05)
    return doc


def test_a_ready_export_is_notified_signed(api: InProcess, receiver: Receiver) -> None:
    secret = _hook(api, receiver.url)
    message_id = api.create_message()
    _, status = api.export_file(message_id)
    headers, body = receiver.wait(1)[0]
    header = headers["Msgtrail-Signature"]
    event = verify_webhook(secret, body, header)
    assert _plain_hmac_ok(secret, body, header)
    assert not _plain_hmac_ok(secret, body + b" ", header)
    assert event["type"] == "export.ready" and event["id"].startswith("evt_")
    assert abs(event["created"] - time.time()) < 60
    assert event["data"]["export_id"] == status["export_id"]
    assert event["data"]["state"] == "ready"
    assert event["data"]["manifest"] == status["manifest"]
    assert event["data"]["manifest_url"] == status["manifest_url"]
    doc = _wait_state(api, message_id, status["export_id"], "delivered")
    assert doc["webhook_attempts"] == 1 and doc["webhook_type"] == "export.ready"

    # An activity export's notice carries its cursor.
    _, activity = api.activity_export()
    headers, body = receiver.wait(2)[1]
    event = verify_webhook(secret, body, headers["Msgtrail-Signature"])
    assert event["data"]["next_cursor"] == activity["export_id"]
    assert event["data"]["file_url"] == activity["file_url"]


def _attempts(outcome: str) -> float:
    """The process's count of completion webhook attempts that ended so."""
    return REGISTRY.get_sample_value("msgtrail_completion_webhooks_total",
                                     {"outcome": outcome}) or 0.0


def test_retries_send_the_same_event_until_taken(api: InProcess) -> None:
    receiver = Receiver([500, 503, 204])
    retried, delivered = _attempts("retry"), _attempts("delivered")
    try:
        secret = _hook(api, receiver.url)
        message_id = api.create_message()
        _, status = api.export_file(message_id)
        sent = receiver.wait(3)
        assert len({body for _, body in sent}) == 1  # the same id and bytes each time
        for headers, body in sent:
            assert verify_webhook(secret, body, headers["Msgtrail-Signature"])
        doc = _wait_state(api, message_id, status["export_id"], "delivered")
        assert doc["webhook_attempts"] == 3 and "webhook_error" not in doc
        time.sleep(0.3)
        assert len(receiver.requests) == 3  # delivered: never sent again
        # The metrics count each attempt by how it ended.
        assert (_attempts("retry") - retried, _attempts("delivered") - delivered) == (2, 1)
    finally:
        receiver.server.shutdown()


def test_a_receiver_that_keeps_failing_is_given_up(api: InProcess) -> None:
    receiver = Receiver([500])
    # Long enough for a retry even when a loaded machine makes the first attempt late.
    api.settings.webhook_give_up_seconds = 2
    try:
        _hook(api, receiver.url)
        message_id = api.create_message()
        _, status = api.export_file(message_id)
        doc = _wait_state(api, message_id, status["export_id"], "failed")
        assert doc["webhook_error"] == "HTTP 500" and doc["webhook_attempts"] >= 2
        assert len(receiver.requests) == doc["webhook_attempts"]
    finally:
        receiver.server.shutdown()


def test_failed_and_expired_exports_are_notified(api: InProcess, receiver: Receiver,
                                                 backend: Embedded | Scale, tmp_path) -> None:
    secret = _hook(api, receiver.url)
    message_id = api.create_message()
    _, status = api.export_file(message_id)
    receiver.wait(1)
    # Expired: the purge that expires the file records the notice.
    store = open_store(api.settings.resolved_storage_url())
    counts = retention.purge(api.engine, store, api.settings, now=time.time() + 4 * 86400,
                             ended=export_webhooks.on_end(api.settings))
    assert counts["files"] == 1
    event = verify_webhook(secret, receiver.wait(2)[1][1],
                           receiver.requests[1][0]["Msgtrail-Signature"])
    assert (event["type"], event["data"]["state"]) == ("export.expired", "expired")
    assert event["data"]["export_id"] == status["export_id"]

    # Failed: the store breaks while the API still remembers it healthy (so the export
    # is accepted), and the one attempt allowed fails to write.
    health = api.service.store_healthy
    health.ttl = 3600
    assert health()
    env = {"MSGTRAIL_STORAGE_URL": api.settings.resolved_storage_url()}
    backend.break_storage(env, tmp_path)
    r = api.client.post(f"/notifications/{message_id}/export_events",
                        params={"app_id": api.app_id})
    assert r.status_code == 200, r.text
    try:
        headers, body = receiver.wait(3)[2]
    finally:
        backend.mend_storage(env, tmp_path)
    event = verify_webhook(secret, body, headers["Msgtrail-Signature"])
    assert (event["type"], event["data"]["state"]) == ("export.failed", "failed")
    assert event["data"]["export_id"] == r.json()["export_id"] and event["data"]["error"]


def test_no_notice_without_a_url(api: InProcess, receiver: Receiver) -> None:
    _hook(api, receiver.url)
    with api.engine.begin() as conn:
        assert apps.set_webhook(conn, Vault(api.settings), api.app_id, "", False) == (None, None)
    message_id = api.create_message()
    _, status = api.export_file(message_id)
    time.sleep(0.3)
    assert receiver.requests == [] and "webhook_state" not in status


@pytest.mark.parametrize("url", [
    "http://127.0.0.1:9/x", "http://localhost/x", "http://[::1]/x", "http://10.1.2.3/x",
    "https://192.168.0.10/x", "http://172.16.5.4/x", "http://169.254.169.254/latest/",
    "http://0.0.0.0/x", "http://[fd00::1]/x", "http://100.64.0.1/x",
])
def test_private_addresses_are_refused(url: str) -> None:
    with pytest.raises(BadRequest, match="non-public address"):
        export_webhooks.check_url(url, allow_private=False)
    assert export_webhooks.check_url(url, allow_private=True) == url


@pytest.mark.parametrize("url", ["ftp://93.184.216.34/x", "93.184.216.34/x", "http:///x",
                                 "https://user:pw@93.184.216.34/x", "javascript:alert(1)"])
def test_only_plain_http_urls_are_taken(url: str) -> None:
    with pytest.raises(BadRequest, match="webhook URL must"):
        export_webhooks.check_url(url, allow_private=True)


def test_a_public_address_is_taken() -> None:
    assert export_webhooks.check_url("https://93.184.216.34/hook", allow_private=False)


def test_a_url_that_turned_private_is_not_called(api: InProcess, receiver: Receiver) -> None:
    """Checked again at delivery: allowed when set, refused when sent."""
    _hook(api, receiver.url)
    api.settings.webhook_allow_private = False
    message_id = api.create_message()
    _, status = api.export_file(message_id)
    doc = _wait_state(api, message_id, status["export_id"], "pending")
    assert "non-public address" in doc["webhook_error"]
    time.sleep(0.3)
    assert receiver.requests == []
    assert json.dumps(doc)  # the status stays JSON


def test_retries_go_to_the_url_the_app_has_now(api: InProcess) -> None:
    old, new = Receiver([500]), Receiver([200])
    try:
        secret = _hook(api, old.url)
        message_id = api.create_message()
        _, status = api.export_file(message_id)
        old.wait(1)
        with api.engine.begin() as conn:  # moved; the secret stays
            assert apps.set_webhook(conn, Vault(api.settings), api.app_id, new.url,
                                    False) == (new.url, None)
        headers, body = new.wait(1)[0]
        assert body == old.requests[0][1]  # the same event
        assert verify_webhook(secret, body, headers["Msgtrail-Signature"])["type"] == (
            "export.ready")
        _wait_state(api, message_id, status["export_id"], "delivered", attempts=2)
    finally:
        old.server.shutdown()
        new.server.shutdown()


def test_an_invalid_port_is_refused() -> None:
    with pytest.raises(BadRequest, match="invalid port"):
        export_webhooks.check_url("http://93.184.216.34:99999/x", allow_private=False)


def test_a_delivery_connects_to_the_address_it_checked(monkeypatch: pytest.MonkeyPatch,
                                                      receiver: Receiver) -> None:
    """DNS rebinding: the name answers an allowed address to the check and another
    right after. The notice goes to the checked address, with the URL's name as its
    Host. (The resolver is the one fake here: no DNS server on this machine can be made
    to rebind; 127.0.0.1 stands for a public address, 127.0.0.2 for a private one.)"""
    port = receiver.server.server_address[1]
    real = socket.getaddrinfo
    answers = iter(["127.0.0.1"])

    def rebinding(host: Any, *args: Any, **kwargs: Any) -> Any:
        if host == "hooks.example.test":  # first the allowed address, then the other
            host = next(answers, "127.0.0.2")
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", rebinding)
    monkeypatch.setattr(export_webhooks, "is_public", lambda a: str(a) == "127.0.0.1")
    settings = Settings(webhook_allow_private=False, webhook_timeout=5)
    delivery = export_webhooks.Delivery(1, "evt_1", 1, "", '{"type": "export.ready"}', 1, 0)
    url = f"http://hooks.example.test:{port}/hooks/msgtrail"
    assert export_webhooks.send(delivery, url, "whsec_test", settings) is None
    headers, body = receiver.wait(1)[0]
    assert headers["Host"] == f"hooks.example.test:{port}" and body == b'{"type": "export.ready"}'
    # Checked again at the next delivery: the name is now the other address, refused.
    error = export_webhooks.send(delivery, url, "whsec_test", settings)
    assert error is not None and "127.0.0.2" in error and len(receiver.requests) == 1


def test_a_tls_delivery_to_the_checked_address_verifies_the_name(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Over https the connection goes to the checked address and the certificate is
    verified for the URL's name (sent as TLS's server name), not for the address."""
    ca = trustme.CA()
    cert = ca.issue_cert("hooks.example.test")
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(server_context)
    receiver = Receiver([200])
    receiver.server.socket = server_context.wrap_socket(receiver.server.socket, server_side=True)
    try:
        ca.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
        monkeypatch.setenv("SSL_CERT_FILE", str(tmp_path / "ca.pem"))
        real = socket.getaddrinfo
        monkeypatch.setattr(socket, "getaddrinfo", lambda host, *a, **k: real(
            "127.0.0.1" if host == "hooks.example.test" else host, *a, **k))
        monkeypatch.setattr(export_webhooks, "is_public", lambda a: str(a) == "127.0.0.1")
        settings = Settings(webhook_allow_private=False, webhook_timeout=5)
        delivery = export_webhooks.Delivery(1, "evt_1", 1, "", "{}", 1, 0)
        port = receiver.server.server_address[1]
        assert export_webhooks.send(delivery, f"https://hooks.example.test:{port}/h",
                                    "whsec_test", settings) is None
        assert receiver.wait(1)[0][0]["Host"] == f"hooks.example.test:{port}"
        # A certificate for another name is refused.
        error = export_webhooks.send(delivery, f"https://hooks.example.test:{port}/h".replace(
            "hooks.example.test", "127.0.0.1"), "whsec_test", settings)
        assert error is not None and "CERTIFICATE_VERIFY_FAILED" in error
    finally:
        receiver.server.shutdown()
