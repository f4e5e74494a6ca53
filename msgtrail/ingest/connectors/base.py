"""What every connector shares: the request as the provider sent it, and the events
it carries in msgtrail's terms (pure logic, no I/O)."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from functools import cached_property
from typing import Any
from urllib.parse import parse_qsl

import msgspec

from msgtrail.errors import BadRequest, Unauthorized

# The metadata keys a sender puts on each message, under every provider.
MESSAGE_KEY = "msgtrail_message_id"
SUBSCRIPTION_KEY = "msgtrail_subscription_id"
EXTERNAL_KEY = "msgtrail_external_id"

_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


@dataclass(frozen=True)
class WebhookRequest:
    """One provider request: `url` is the address the provider called (the public URL
    plus path and query), which is what Twilio signs."""

    body: bytes
    headers: Mapping[str, str]  # names in lower case
    url: str
    query: Mapping[str, str]
    now: int

    @cached_property
    def form(self) -> list[tuple[str, str]]:
        """The body as form fields (application/x-www-form-urlencoded), in order."""
        try:
            return parse_qsl(self.body.decode(), keep_blank_values=True)
        except UnicodeDecodeError:
            raise BadRequest("body: not a UTF-8 form") from None


@dataclass
class Incoming:
    """One provider event. `event` is msgtrail's name for it; `problem` says why it
    cannot be recorded (it is then kept among the app's webhook rejections)."""

    raw: Any
    event: str | None = None
    message_id: str | None = None
    subscription_id: str | None = None
    ts: int | None = None
    provider_id: str | None = None
    onesignal_id: str | None = None
    external_id: str | None = None
    device_type: str | None = None
    failure_message: str | None = None
    # The channel the provider implies (SendGrid: email); None when any channel fits.
    channel: str | None = None
    # OneSignal only: a message seen for the first time is created with this name.
    message_name: str | None = None
    problem: str | None = None


def canonical_uuid(value: object) -> str | None:
    """A UUID in canonical lower case, or None."""
    if not isinstance(value, str):
        return None
    text = value.strip().lower()
    return text if _UUID.fullmatch(text) else None


def text(value: object) -> str | None:
    """A non-empty string value, or None (templates render missing values as "")."""
    if value is None:
        return None
    out = str(value).strip()
    return out or None


def unix_seconds(value: object) -> int | None:
    """Unix seconds from a number, a numeric string or an ISO 8601 time; None if none."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        return int(value)
    if isinstance(value, str):
        raw = value.strip()
        if not raw:
            return None
        try:
            return int(float(raw))
        except ValueError:
            pass
        try:
            moment = datetime.fromisoformat(raw.replace("Z", "+00:00"))
        except ValueError:
            return None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        return int(moment.timestamp())
    return None


def ids_from(meta: Mapping[str, Any] | None) -> dict[str, Any]:
    """msgtrail's ids from a provider's metadata map (values may be lists: SES tags)."""
    meta = meta or {}

    def first(key: str) -> Any:
        value = meta.get(key)
        return value[0] if isinstance(value, list) and value else value

    return {"message_id": text(first(MESSAGE_KEY)),
            "subscription_id": text(first(SUBSCRIPTION_KEY)),
            "external_id": text(first(EXTERNAL_KEY))}


def json_body(req: WebhookRequest) -> Any:
    try:
        return msgspec.json.decode(req.body)
    except msgspec.DecodeError as exc:
        raise BadRequest(f"body: not valid JSON ({exc})") from None


def expand(base: Incoming, events: tuple[str, ...]) -> list[Incoming]:
    """One provider event that means several of msgtrail's (a bounce is also a failure)."""
    return [replace(base, event=name) for name in events]


@dataclass(frozen=True)
class Context:
    """What a connector may consult beyond the request."""

    app_id: str
    # How far from now a signed timestamp may be (a replay window; the source's own).
    max_age_seconds: int
    sns_host_pattern: str
    # The app_id an API key belongs to, or None (OneSignal's Authorization header).
    key_owner: Callable[[str], str | None]
    # GET a URL and return its body (SNS certificates and SubscribeURLs).
    fetch: Callable[[str], bytes]
    # Trusted roots for SNS signing certificates (a PEM file; None: the system's), and
    # where a certificate's missing issuer may be fetched from (scheme and host; the
    # default allows nowhere).
    sns_ca_bundle: str | None = None
    sns_issuer_pattern: str = "^$"


def check_age(signed_at: object, ctx: Context, now: int, provider: str) -> None:
    """Refuse a signature whose signed timestamp is outside the replay window."""
    at = unix_seconds(signed_at)
    if at is None or abs(now - at) > ctx.max_age_seconds:
        raise Unauthorized(f"{provider} signature timestamp is more than "
                           f"{ctx.max_age_seconds} s from now (a replay?)")


def obj(value: object) -> dict[str, Any]:
    """The value if it is a JSON object, else an empty one."""
    return value if isinstance(value, dict) else {}
