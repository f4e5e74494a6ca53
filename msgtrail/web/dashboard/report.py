"""What a message report shows, read from the activity store through the service."""

from __future__ import annotations

from typing import Any

from msgtrail.channels import CHANNEL_EVENTS
from msgtrail.errors import BadRequest
from msgtrail.inputs import require_uuid
from msgtrail.messages import Message
from msgtrail.service import Service
from msgtrail.store import counters
from msgtrail.web.dashboard import charts

# Recipients shown in the Audience Activity table: as many as a recount keeps, for a
# message without pages yet.
SAMPLE = counters.FIRST_RECIPIENTS


def activity_timeline(svc: Service, message: Message) -> charts.Timeline | None:
    """Recipients per event and time bucket, for the chart; None while a big message
    is being counted."""
    found = svc.timeline(message)
    if found is None:
        return None
    width, rows = found
    return charts.timeline(width or 60, rows, CHANNEL_EVENTS[message.target_channel])


def audience(svc: Service, message: Message, event: str | None,
             after: str | None = None, find: str | None = None
             ) -> list[dict[str, Any]] | None:
    """The first recipients (by subscription id), those with `event` only if given,
    after the subscription id `after` (the next page), or the one `find` names by its
    subscription id or external id, as the message's pages last built hold them; None
    while a big message has none yet."""
    events = [event] if event in CHANNEL_EVENTS[message.target_channel] else []
    try:
        after = require_uuid(after, "after") if after is not None else None
    except BadRequest:
        after = None  # (a link edited by hand: the first page)
    return svc.audience(message, events, SAMPLE, after, find or None)
