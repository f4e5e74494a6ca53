"""Checks of values a caller sends (ids, JSON bodies, flags), each failing with a
400 that names the value: shared by the API, the dashboard and the webhooks."""

from __future__ import annotations

import json
import uuid
from typing import Any

from msgtrail.errors import BadRequest


def require_uuid(value: str | None, name: str) -> str:
    if not value:
        raise BadRequest(f"{name} is required (a UUID)")
    try:
        return str(uuid.UUID(value))
    except ValueError:
        raise BadRequest(f"{name}: {value!r} is not a valid UUID") from None


def json_object(raw: bytes) -> dict[str, Any]:
    """A request body that must be a JSON object; empty counts as `{}` (OneSignal's SDKs
    send an empty body to export_events)."""
    if not raw.strip():
        return {}
    try:
        doc = json.loads(raw)
    except ValueError:
        raise BadRequest("body: not valid JSON") from None
    if not isinstance(doc, dict):
        raise BadRequest("body: must be a JSON object")
    return doc


def flag(value: Any, name: str) -> bool:
    """An optional boolean of a JSON body (absent: false)."""
    if value is None:
        return False
    if not isinstance(value, bool):
        raise BadRequest(f"{name}: must be true or false")
    return value
