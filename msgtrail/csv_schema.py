"""The audience-activity CSV: columns per channel and how one row is written.

Columns follow OneSignal's documentation for push; email and SMS add their own events
after them. An event column holds that event's time (ISO 8601, UTC) or is empty.
"""

from __future__ import annotations

from collections.abc import Callable

from msgtrail.channels import CHANNEL_EVENTS
from msgtrail.db.dialect import formula_start, iso_utc, needs_csv_quotes

PUSH_COLUMNS = ("external_user_id", "subscription_id", "device_type", "sent", "delivered",
                "clicked", "onesignal_id", "failed", "unsubscribed", "failure_message")

# Columns beyond push's, per channel, in the order they are appended.
EXTRA_COLUMNS = {
    "push": (),
    "email": ("opened", "bounced", "suppressed", "reported_spam"),
    "sms": ("suppressed", "rejected"),
}

# CSV column -> recipients column, where the names differ.
_SOURCE = {"external_user_id": "external_id"}
_TEXT = ("external_user_id", "device_type", "failure_message")
_IDS = ("subscription_id", "onesignal_id")


def columns(channel: str) -> tuple[str, ...]:
    return PUSH_COLUMNS + EXTRA_COLUMNS[channel]


def header(channel: str) -> bytes:
    return (",".join(columns(channel)) + "\n").encode()


def event_columns(channel: str) -> tuple[str, ...]:
    return tuple(c for c in columns(channel) if c in CHANNEL_EVENTS[channel])


def line_sql(channel: str, ref: Callable[[str], str], dialect: str, safe: bool = True) -> str:
    """An SQL expression for one CSV line (without newline) of a recipient, where
    ref(name) is the SQL that yields recipients column `name`; `safe` neutralises
    formula cells (see `neutralised`).

    Readers build it in DuckDB (msgtrail.recipients), and recipient pages store it, so
    that an export of a quiet message only concatenates lines."""
    parts = []
    for column in columns(channel):
        value = ref(_SOURCE.get(column, column))
        if column in _IDS:
            parts.append(f"coalesce({value}, '')")
        elif column in _TEXT:
            parts.append(_quoted(neutralised(value, dialect) if safe else value, dialect))
        else:
            parts.append(iso_utc(value, dialect))
    return " || ',' || ".join(parts)


def has_formula_sql(ref: Callable[[str], str], dialect: str) -> str:
    """True when a recipient's safe and raw lines differ: a text cell starts a formula."""
    return " OR ".join(f"({formula_start(ref(_SOURCE.get(c, c)), dialect)})" for c in _TEXT)


def neutralised(value: str, dialect: str) -> str:
    """OWASP's defence against CSV injection: a cell that a spreadsheet would run as a
    formula (it begins with = + - @, a tab or a carriage return) gets a leading single
    quote, which spreadsheets show as text and do not evaluate."""
    return f"(CASE WHEN {formula_start(value, dialect)} THEN '''' || {value} ELSE {value} END)"


def _quoted(value: str, dialect: str) -> str:
    """RFC 4180: quote a field only when it holds a comma, quote or line break."""
    return (f"CASE WHEN {value} IS NULL THEN '' WHEN {needs_csv_quotes(value, dialect)}"
            f" THEN '\"' || replace({value}, '\"', '\"\"') || '\"' ELSE {value} END")
