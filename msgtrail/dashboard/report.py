"""What a message report shows, read from the activity store."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, text

from msgtrail.channels import CHANNEL_EVENTS
from msgtrail.dashboard import charts

# Recipients shown in the Audience Activity table.
SAMPLE = 50


def activity_timeline(conn: Connection, message_pk: int) -> charts.Timeline:
    """Recipients per event and time bucket, for the chart."""
    bounds = ", ".join(f"min({e}), max({e})" for e in charts.SERIES)
    row = conn.execute(text(f"SELECT {bounds} FROM recipients WHERE message_pk = :pk"),
                       {"pk": message_pk}).one()
    values = [v for v in row if v is not None]
    if not values:
        return charts.timeline(60, [])
    bucket = charts.bucket_for(min(values), max(values))
    union = " UNION ALL ".join(
        f"SELECT '{e}', ({e} / {bucket}) * {bucket}, count(*) FROM recipients"
        f" WHERE message_pk = :pk AND {e} IS NOT NULL GROUP BY ({e} / {bucket})"
        for e in charts.SERIES)
    rows = conn.execute(text(union), {"pk": message_pk}).all()
    return charts.timeline(bucket, [(str(s), int(at), int(n)) for s, at, n in rows])


def recipients(conn: Connection, message_pk: int, channel: str,
               activity: str | None) -> list[dict[str, Any]]:
    """The first recipients (by subscription id), those with `activity` only if given."""
    events = CHANNEL_EVENTS[channel]
    where = f" AND {activity} IS NOT NULL" if activity in events else ""
    rows = conn.execute(text(
        f"SELECT subscription_id, external_id, device_type, failure_message, {', '.join(events)}"
        f" FROM recipients WHERE message_pk = :pk{where} ORDER BY subscription_id"
        f" LIMIT {SAMPLE}"), {"pk": message_pk}).mappings().all()
    return [dict(r) for r in rows]
