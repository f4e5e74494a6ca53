"""What a message report shows, read from the activity store."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine

from msgtrail.channels import CHANNEL_EVENTS
from msgtrail.store import activity, counters
from msgtrail.web.dashboard import charts

# Recipients shown in the Audience Activity table.
SAMPLE = 50


def activity_timeline(engine: Engine, message_pk: int, channel: str) -> charts.Timeline:
    """Recipients per event and time bucket, for the chart."""
    with activity.snapshot(engine) as raw:
        width, rows = counters.timeline(raw, message_pk, channel, charts.SERIES,
                                          charts.bucket_for)
    return charts.timeline(width or 60, rows)


def audience(engine: Engine, message_pk: int, channel: str,
             event: str | None) -> list[dict[str, Any]]:
    """The first recipients (by subscription id), those with `event` only if given."""
    events = [event] if event in CHANNEL_EVENTS[channel] else []
    with activity.snapshot(engine) as raw:
        return counters.sample(raw, message_pk, channel, events, SAMPLE)
