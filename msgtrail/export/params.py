"""An export's parameters as a caller asks for them: which events, raw or not, which
format, and for an app's activity export its filter. Each is checked here, once, for
the API and the dashboard alike; every error names the field."""

from __future__ import annotations

from typing import Any

from msgtrail.channels import CHANNEL_EVENTS
from msgtrail.errors import BadRequest
from msgtrail.export.formats import COMPRESSIONS, FORMATS
from msgtrail.store.event_batch import parse_iso

# The fields an activity export's body may carry.
ACTIVITY_FIELDS = ("message_ids", "events", "since", "until", "cursor", "format",
                   "compression")
MAX_MESSAGE_IDS = 1_000


def channel_events(raw: Any, channel: str) -> list[str]:
    """The `events` filter of a message's export: the channel's events."""
    return event_names(raw, CHANNEL_EVENTS[channel], f"the {channel} events ")


def event_names(raw: Any, allowed: tuple[str, ...], among: str = "") -> list[str]:
    """An `events` filter, a comma-separated string or a list of names from `allowed`
    (empty: no filter), in `allowed`'s order."""
    if raw is None or raw == "" or raw == []:
        return []
    if isinstance(raw, str):
        names = [p.strip() for p in raw.split(",") if p.strip()]
    elif isinstance(raw, list) and all(isinstance(p, str) for p in raw):
        names = raw
    else:
        raise BadRequest("events: a comma-separated list of event names")
    bad = [n for n in names if n not in allowed]
    if bad:
        raise BadRequest(f"events: {', '.join(map(repr, bad))} not among {among}"
                         f"{', '.join(allowed)}")
    return sorted(set(names), key=allowed.index)


def file_format(value: Any) -> str:
    """The `format` asked for: csv when absent."""
    if value is None or value == "":
        return "csv"
    if not isinstance(value, str) or value not in FORMATS:
        raise BadRequest(f"format: must be one of {', '.join(FORMATS)}")
    return str(value)


def job_params(events: list[str] | str, raw: bool) -> dict[str, Any]:
    """A job's parameters; `csv_raw` only when asked for, so that the parameters of
    a default export stay what they always were."""
    return {"events": events, **({"csv_raw": True} if raw else {})}


def moment(raw: Any, name: str) -> int | None:
    """Unix seconds or ISO 8601 (no zone: UTC), as unix seconds."""
    if raw is None:
        return None
    if isinstance(raw, int) and not isinstance(raw, bool) and raw >= 0:
        return raw
    parsed = parse_iso(raw) if isinstance(raw, str) else None
    if parsed is None:
        raise BadRequest(f"{name}: {raw!r} is neither unix seconds nor ISO 8601")
    return parsed


def activity_filter(body: dict[str, Any]) -> dict[str, Any]:
    """An activity export's parameters from its body, but for `message_ids`, `events`
    and `cursor`, left as given: the first and last only the store can check, and the
    three are checked in that order (`Service.request_activity_export`)."""
    unknown = sorted(set(body) - set(ACTIVITY_FIELDS))
    if unknown:
        raise BadRequest(f"unknown field(s) {', '.join(map(repr, unknown))}; "
                         f"the fields are {', '.join(ACTIVITY_FIELDS)}")
    fmt = file_format(body.get("format"))
    compression = body.get("compression") or FORMATS[fmt].compression
    if compression not in COMPRESSIONS:
        raise BadRequest(f"compression: must be one of {', '.join(COMPRESSIONS)}")
    if fmt == "parquet" and compression != "none":
        raise BadRequest("compression: a Parquet file is compressed inside, by column; "
                         "leave compression out or set none")
    since, until = moment(body.get("since"), "since"), moment(body.get("until"), "until")
    if since is not None and until is not None and since >= until:
        raise BadRequest("until: must be after since")
    return {"message_ids": body.get("message_ids"),
            "events": body.get("events"),
            "since": since, "until": until, "cursor": body.get("cursor"),
            "format": fmt, "compression": compression}
