"""The message-history report: OneSignal's CSV of who was sent, or who clicked.

Every value is double-quoted, as in OneSignal's sample; `timestamp` (unix seconds) is
filled only for clicked.
"""

from __future__ import annotations

from msgtrail import csv_schema

HEADER = b"player_id,onesignal_id,external_id,target_channel,timestamp\n"
EVENTS = ("sent", "clicked")


def line_sql(channel: str, event: str, dialect: str, raw: bool = False) -> str:
    """An SQL expression (of `dialect`) for one report line (without newline)
    of a recipient; unless `raw`, an external id that starts a formula is neutralised
    (quoting a cell does not stop a spreadsheet from running it)."""
    if channel not in ("push", "email", "sms") or event not in EVENTS:
        raise ValueError(f"no history report for {channel}/{event}")
    timestamp = "coalesce(CAST(clicked AS TEXT), '')" if event == "clicked" else "''"
    external = "coalesce(external_id, '')" if raw else (
        f"coalesce({csv_schema.neutralised('external_id', dialect)}, '')")
    return ("'\"' || subscription_id || '\",\"' || coalesce(onesignal_id, '') || '\",\"'"
            f" || replace({external}, '\"', '\"\"')"
            f" || '\",\"{channel}\",\"' || {timestamp} || '\"'")
