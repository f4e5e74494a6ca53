"""What /openapi.json says the API accepts and answers, beyond what the route
signatures tell FastAPI: request bodies the routes read themselves (JSON and NDJSON
events, history, export options), the `{"errors": [...]}` envelope of every error
status, and parameter formats and bounds.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel

from msgtrail.channels import CHANNELS, EVENTS
from msgtrail.store.event_batch import FUTURE_SLACK, MAX_TEXT, MIN_TIMESTAMP
from msgtrail.web.api.examples import EXAMPLES


class ErrorEnvelope(BaseModel):
    """OneSignal's error answer: every message that applies."""

    errors: list[str]


_WHEN = {
    400: "Malformed body or parameter, an invalid id or event (each error named)",
    401: "Missing, unknown or revoked API key; for a webhook, a missing or bad signature",
    403: "A webhook signed for an SNS topic that is not connected to this app",
    404: "No such message (or export) in this app, or its activity was purged",
    413: "More events or bytes than one request may carry",
    429: "Over the export rate limit, or another export of the account is running; "
         "see Retry-After",
    503: "The database or the export storage cannot be reached; see Retry-After",
}


def errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The `responses` of a route that can answer these error statuses."""
    return {status: {"model": ErrorEnvelope, "description": _WHEN[status]}
            for status in statuses}


UUID = {"type": "string", "format": "uuid"}
_TEXT = {"anyOf": [{"type": "string"}, {"type": "null"}]}

EVENT = {
    "type": "object",
    "required": ["subscription_id", "event"],
    "properties": {
        "subscription_id": UUID,
        "event": {"type": "string", "enum": list(EVENTS),
                  "description": "The channel's events only (see docs/connectors.md)"},
        "timestamp": {"anyOf": [
            {"type": "integer", "minimum": MIN_TIMESTAMP,
             "description": f"Unix seconds, up to {FUTURE_SLACK // 3600} h ahead"},
            {"type": "string", "format": "date-time"}, {"type": "null"}],
            "description": "Default: now"},
        "onesignal_id": {"anyOf": [UUID, {"type": "null"}]},
        **{name: {**_TEXT, "maxLength": limit} for name, limit in MAX_TEXT.items()},
    },
}

# What "Try it out" on /docs sends unless edited: requests that succeed as they are
# (on a message and app of the caller's), not Swagger UI's `"string"` in every field.
_EVENT_EXAMPLE = {"subscription_id": "6f1f2c38-1f54-4a34-9c41-63c2ab3c8a4f",
                  "event": "sent", "timestamp": 1796645016, "external_id": "user-42",
                  "device_type": "Android"}

EVENTS_BODY = {
    "required": True,
    "content": {
        "application/json": {"schema": {
            "type": "object", "required": ["events"],
            "properties": {"events": {"type": "array", "items": EVENT, "minItems": 1,
                                      "maxItems": 10_000}}},
            "example": {"events": [_EVENT_EXAMPLE]}},
        "application/x-ndjson": {"schema": {
            "type": "string", "description": "One event object per line"}},
    },
}

WEBHOOK_BODY = {
    "required": True,
    "description": "As the provider sends it, signed as it signs it (docs/connectors.md): "
                   "OneSignal Event Streams, SendGrid, SES (SNS) and Mailgun send JSON; "
                   "Twilio a form; Postmark JSON with basic auth",
    "content": {
        "application/json": {"schema": {"anyOf": [{"type": "object"}, {"type": "array"}]}},
        "text/plain": {"schema": {"type": "string", "description": "An SNS message (JSON)"}},
        "application/x-www-form-urlencoded": {"schema": {"type": "object"}},
    },
}

EXPORT_BODY = {
    "required": False,
    "content": {"application/json": {"schema": {
        "type": "object",
        "properties": {
            "events": {"anyOf": [{"type": "string"},
                                 {"type": "array", "items": {"type": "string",
                                                             "enum": list(EVENTS)}}],
                       "description": "Only recipients with one of these events"},
            "csv_raw": {"type": "boolean", "default": False,
                        "description": "Keep formula-like cells as they are"},
            "format": {"type": "string", "enum": ["csv", "jsonl", "parquet"],
                       "default": "csv", "description": "The file's format"},
        }}, "example": {"format": "csv"}}},
}

_MOMENT = {"anyOf": [{"type": "integer", "minimum": 0, "description": "Unix seconds"},
                     {"type": "string", "format": "date-time"}]}

ACTIVITY_EXPORT_BODY = {
    "required": False,
    "content": {"application/json": {"schema": {
        "type": "object", "additionalProperties": False,
        "properties": {
            "message_ids": {"type": "array", "items": UUID, "minItems": 1, "maxItems": 1000,
                            "description": "Default: every message of the app"},
            "events": {"anyOf": [{"type": "string"},
                                 {"type": "array", "items": {"type": "string",
                                                             "enum": list(EVENTS)}}],
                       "description": "Only these events (default: all)"},
            "since": {**_MOMENT, "description": "Events at or after this time (their own)"},
            "until": {**_MOMENT, "description": "Events before this time (their own)"},
            "cursor": {"type": "string", "format": "uuid",
                       "description": "A previous export's next_cursor: only events "
                                      "recorded after that export's snapshot"},
            "format": {"type": "string", "enum": ["csv", "jsonl", "parquet"],
                       "default": "csv"},
            "compression": {"type": "string", "enum": ["gzip", "none"],
                            "description": "Default: gzip for csv and jsonl, none for "
                                           "parquet (compressed inside)"},
        }}, "example": {"format": "jsonl"}}},
}

HISTORY_BODY = {
    "required": True,
    "content": {"application/json": {"schema": {
        "type": "object", "required": ["app_id", "events"],
        "properties": {
            "app_id": UUID,
            "events": {"type": "string", "enum": ["sent", "clicked"]},
            "email": {"type": "string", "format": "email"},
            "csv_raw": {"type": "boolean", "default": False},
        }}, "example": {"app_id": "YOUR_APP_ID", "events": "clicked"}}},
}

CREATE_BODY = {
    "required": True,
    "content": {"application/json": {"schema": {
        "type": "object", "required": ["app_id"], "additionalProperties": True,
        "properties": {
            "app_id": UUID,
            "name": {"type": "string", "maxLength": 500},
            "target_channel": {"type": "string", "enum": list(CHANNELS)},
            "contents": {"type": "object", "additionalProperties": {"type": "string"}},
            "headings": {"type": "object", "additionalProperties": {"type": "string"}},
            "external_id": {"type": "string"},
        }}, "example": {"app_id": "YOUR_APP_ID", "name": "Spring sale",
                        "target_channel": "email"}}},
}

# Parameters that are ids, wherever they appear.
_ID_PARAMETERS = {"app_id", "message_id", "export_id"}


def _examples(doc: dict[str, Any]) -> None:
    """Real answers as the 200 examples (FastAPI shows `additionalProp1` for a dict)."""
    for (method, path), example in EXAMPLES.items():
        ok = doc["paths"][path][method]["responses"]["200"]
        ok.setdefault("content", {}).setdefault("application/json", {})["example"] = example


# Routes that take no API key: health, files (their URL is the credential), provider
# webhooks (signed by the provider).
_OPEN_TAGS = {"health", "files"}
_OPEN_PATHS = {"/webhooks/{source}/{app_id}"}


def _security(doc: dict[str, Any]) -> None:
    """The REST API key, so that /docs's Authorize button works: sent as `Authorization:
    Bearer KEY`, which msgtrail takes like OneSignal's `Key KEY`."""
    doc.setdefault("components", {})["securitySchemes"] = {"RestApiKey": {
        "type": "http", "scheme": "bearer",
        "description": "The app's REST API key (`Authorization: Key KEY`, as OneSignal "
                       "documents it, or `Bearer KEY`)"}}
    doc["security"] = [{"RestApiKey": []}]
    for path, operations in doc["paths"].items():
        for operation in operations.values():
            if path in _OPEN_PATHS or _OPEN_TAGS & set(operation.get("tags", [])):
                operation["security"] = []


def install(app: FastAPI) -> None:
    """Generate the document once, then correct what FastAPI cannot know: errors are
    400 in the envelope (never FastAPI's 422), and ids are UUIDs."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        doc = get_openapi(title=app.title, version=app.version,
                          description=app.description, routes=app.routes)
        for path in doc["paths"].values():
            for operation in path.values():
                operation.get("responses", {}).pop("422", None)
                for parameter in operation.get("parameters", []):
                    if parameter["name"] in _ID_PARAMETERS:
                        parameter["schema"] = {**UUID, "title": parameter["name"]}
        for name in ("HTTPValidationError", "ValidationError"):
            doc.get("components", {}).get("schemas", {}).pop(name, None)
        _examples(doc)
        _security(doc)
        app.openapi_schema = doc
        return doc

    app.openapi = openapi  # type: ignore[method-assign]
