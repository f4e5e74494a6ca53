"""Twilio's SMS status callbacks: a form-encoded POST per status change, signed with
HMAC-SHA1 of the auth token over the URL Twilio called plus every POST parameter,
sorted by name (`X-Twilio-Signature`). Our ids ride in the StatusCallback URL's query."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from typing import Any
from urllib.parse import urlencode, urlsplit, urlunsplit

from msgtrail.errors import BadRequest, Unauthorized
from msgtrail.ingest.connectors.base import Context, Incoming, WebhookRequest, ids_from, text

SOURCE = "twilio"
CHANNEL = "sms"
SIGNATURE = "x-twilio-signature"

EVENTS = {"sent": "sent", "delivered": "delivered", "undelivered": "failed",
          "failed": "failed"}
# Not events: states on the way (and inbound states that a status callback never has).
TRANSIENT = {"accepted", "queued", "sending", "scheduled", "receiving", "received",
             "read", "canceled", "partially_delivered"}
_DEFAULT_PORTS = {"https": 443, "http": 80}


def credential(auth_token: str | None = None, **_: Any) -> dict[str, Any]:
    if not auth_token:
        raise BadRequest("twilio needs --auth-token (the account's Auth Token)")
    return {"auth_token": auth_token.strip()}


def signature(auth_token: str, url: str, params: list[tuple[str, str]]) -> str:
    """Twilio's signature of a request: as twilio-python's RequestValidator computes it."""
    values: dict[str, set[str]] = {}
    for name, value in params:
        values.setdefault(name, set()).add(value)
    data = url + "".join(name + value for name in sorted(values)
                         for value in sorted(values[name]))
    digest = hmac.new(auth_token.encode(), data.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def test_event(cred: dict[str, Any], url: str, ids: dict[str, str], now: int
               ) -> tuple[str, dict[str, str], bytes]:
    """A delivered status callback, `ids` in the URL's query as a send puts them,
    signed as Twilio signs."""
    url = f"{url}?{urlencode(ids)}"
    form = [("MessageSid", "SM" + secrets.token_hex(16)), ("MessageStatus", "delivered"),
            ("SmsStatus", "delivered"), ("To", "+15005550006"), ("From", "+15005550001")]
    return url, {"content-type": "application/x-www-form-urlencoded",
                 SIGNATURE: signature(cred["auth_token"], url, form)}, urlencode(form).encode()


def _url_variants(url: str) -> list[str]:
    """The URL as called, with and without its default port: Twilio signs whichever
    form it was given, so both are tried, as Twilio's own validators do."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = parts.port or _DEFAULT_PORTS.get(parts.scheme)
    with_port = urlunsplit(parts._replace(netloc=f"{host}:{port}"))
    without = urlunsplit(parts._replace(netloc=host)) if parts.port in (
        None, _DEFAULT_PORTS.get(parts.scheme)) else url
    return list(dict.fromkeys([url, with_port, without]))


def valid(auth_token: str, url: str, params: list[tuple[str, str]], given: str) -> bool:
    def matches(candidate: str) -> bool:
        return hmac.compare_digest(signature(auth_token, candidate, params).encode(),
                                   given.encode())

    return matches(url) or any(matches(u) for u in _url_variants(url)[1:])


def verify(req: WebhookRequest, cred: dict[str, Any], ctx: Context) -> None:
    given = req.headers.get(SIGNATURE)
    if not given or not valid(cred["auth_token"], req.url, req.form, given):
        raise Unauthorized("missing or invalid X-Twilio-Signature (is MSGTRAIL_PUBLIC_URL "
                           "the address Twilio calls?)")


def parse(req: WebhookRequest, ctx: Context) -> list[Incoming]:
    form = dict(req.form)
    status = text(form.get("MessageStatus") or form.get("SmsStatus"))
    if status is None or not form.get("MessageSid"):
        raise BadRequest("body: a Twilio status callback has MessageSid and MessageStatus")
    if status in TRANSIENT:
        return []
    event = EVENTS.get(status)
    code = text(form.get("ErrorCode"))
    incoming = Incoming(raw=form, event=event, ts=req.now, channel=CHANNEL,
                        device_type="sms", provider_id=f"{form['MessageSid']}:{status}",
                        failure_message=code if event == "failed" else None,
                        **ids_from(req.query))
    if event is None:
        incoming.problem = f"Twilio status {status!r} is not recorded by msgtrail"
    return [incoming]
