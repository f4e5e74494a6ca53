"""The message-history report: OneSignal's CSV of who was sent, or who clicked.

Every value is double-quoted, as in OneSignal's sample; `timestamp` (unix seconds) is
filled only for clicked.
"""

from __future__ import annotations

HEADER = b"player_id,onesignal_id,external_id,target_channel,timestamp\n"
EVENTS = ("sent", "clicked")


def line_sql(channel: str, event: str) -> str:
    """An SQL expression (SQLite and PostgreSQL) for one report line (without newline) of a recipient."""
    if channel not in ("push", "email", "sms") or event not in EVENTS:
        raise ValueError(f"no history report for {channel}/{event}")
    timestamp = "coalesce(CAST(clicked AS TEXT), '')" if event == "clicked" else "''"
    return ("'\"' || subscription_id || '\",\"' || coalesce(onesignal_id, '') || '\",\"'"
            " || replace(coalesce(external_id, ''), '\"', '\"\"')"
            f" || '\",\"{channel}\",\"' || {timestamp} || '\"'")
