"""Load a OneSignal audience-activity CSV (`.csv` or `.csv.gz`, any channel's columns)
as the events of one message: a file fetched from OneSignal keeps its activity here
past OneSignal's 30 days. The whole file goes in one transaction, or none of it; the
log's idempotency makes a second import of the same file change nothing."""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Engine

from msgtrail import messages
from msgtrail.apps import App
from msgtrail.channels import CHANNEL_EVENTS, CHANNELS, EVENT_CODE
from msgtrail.errors import BadRequest, NotFound
from msgtrail.ingest.connectors.base import canonical_uuid, unix_seconds
from msgtrail.store import activity, event_batch
from msgtrail.store.event_batch import FUTURE_SLACK, MAX_TEXT, MIN_TIMESTAMP

# OneSignal names its files events_audience-activity-{message_id}-{channel}-{time}.csv.gz
_FILE_NAME = re.compile(r"([0-9a-fA-F-]{36})-(push|email|sms)-")
# Events appended per log batch.
BATCH = 10_000
MAX_ERRORS = 20
# Any message id derived from a file's contents lives in this namespace.
_NAMESPACE = uuid.UUID("6f1c0a52-52f5-4e3c-9a57-6a3f61b0c2d1")


@dataclass(frozen=True)
class Imported:
    message_id: str
    channel: str
    created: bool
    recipients: int
    events: int
    without_events: int


def _open(path: Path) -> io.TextIOBase:
    with path.open("rb") as probe:
        gzipped = probe.read(2) == b"\x1f\x8b"
    # The text wrapper owns (and closes) the file it is given.
    raw = gzip.open(path, "rb") if gzipped else path.open("rb")  # noqa: SIM115
    return io.TextIOWrapper(raw, encoding="utf-8-sig", newline="")


def _file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _channel_of(header: list[str], path: Path) -> str:
    named = _FILE_NAME.search(path.name)
    if named:
        return named.group(2)
    if {"opened", "bounced", "reported_spam"} & set(header):
        return "email"
    if "rejected" in header:
        return "sms"
    return "push"


def _message_id(path: Path, given: str | None) -> str:
    """The id given, else the one in OneSignal's file name, else one derived from the
    file's bytes (so that importing the same file again finds the same message)."""
    if given:
        wanted = canonical_uuid(given)
        if wanted is None:
            raise BadRequest(f"--message-id: {given!r} is not a UUID")
        return wanted
    named = _FILE_NAME.search(path.name)
    if named and canonical_uuid(named.group(1)):
        return str(canonical_uuid(named.group(1)))
    return str(uuid.uuid5(_NAMESPACE, _file_digest(path)))


def _time(value: str) -> int | None:
    return unix_seconds(value.removesuffix(" UTC"))


def _rows(reader: Iterator[list[str]], header: list[str], channel: str, now: int,
          errors: list[str], counts: dict[str, int]) -> Iterator[tuple[object, ...]]:
    """Log rows (without their sequence number) of every CSV row, naming bad cells."""
    where = {name: i for i, name in enumerate(header)}
    events = [(e, where[e]) for e in CHANNEL_EVENTS[channel] if e in where]

    def cell(row: list[str], name: str) -> str | None:
        i = where.get(name)
        value = row[i] if i is not None and i < len(row) else ""
        return value or None

    for line_no, row in enumerate(reader, start=2):
        if not any(row):
            continue
        sub = canonical_uuid(cell(row, "subscription_id"))
        if sub is None:
            errors.append(f"line {line_no}: subscription_id {cell(row, 'subscription_id')!r}"
                          " is not a UUID")
            continue
        osid_text = cell(row, "onesignal_id")
        osid = canonical_uuid(osid_text) if osid_text else None
        if osid_text and osid is None:
            errors.append(f"line {line_no}: onesignal_id {osid_text!r} is not a UUID")
        ext, dev, fm = (cell(row, "external_user_id"), cell(row, "device_type"),
                        cell(row, "failure_message"))
        for name, value in (("external_id", ext), ("device_type", dev),
                            ("failure_message", fm)):
            if value is not None and len(value) > MAX_TEXT[name]:
                errors.append(f"line {line_no}: {name} longer than {MAX_TEXT[name]} characters")
            if value is not None and "\x00" in value:
                errors.append(f"line {line_no}: {name} holds a NUL character")
        counts["recipients"] += 1
        found = 0
        for event, i in events:
            value = row[i] if i < len(row) else ""
            if not value:
                continue
            ts = _time(value)
            if ts is None or not MIN_TIMESTAMP <= ts <= now + FUTURE_SLACK:
                errors.append(f"line {line_no}: {event} {value!r} is not a time")
                continue
            found += 1
            yield (sub, EVENT_CODE[event], ts, osid, ext, dev, fm)
        if not found:
            counts["without_events"] += 1
        if len(errors) >= MAX_ERRORS:
            return


def import_file(engine: Engine, app: App, path: Path, message_id: str | None,
                now: int) -> Imported:
    """Import the file as the events of one message of the app, creating it if needed."""
    wanted = _message_id(path, message_id)
    with _open(path) as stream:
        reader = csv.reader(stream)
        header = [h.strip() for h in next(reader, [])]
        if "subscription_id" not in header:
            raise BadRequest(f"{path.name}: no subscription_id column; not an audience "
                             "activity CSV")
        with engine.begin() as conn:
            created = False
            try:
                message = messages.find(conn, app, wanted)
            except NotFound:
                channel = _channel_of(header, path)
                message = messages.create(conn, app, {
                    "name": f"Imported from {path.name}", "target_channel": channel}, wanted)
                created = True
            unknown = [c for c in header if c in EVENT_CODE
                       and c not in CHANNEL_EVENTS[message.target_channel]]
            if unknown or message.target_channel not in CHANNELS:
                raise BadRequest(f"{path.name}: columns {', '.join(unknown)} are not events "
                                 f"of a {message.target_channel} message")
            errors: list[str] = []
            counts = {"recipients": 0, "without_events": 0, "events": 0}
            pending: list[tuple[object, ...]] = []
            for row in _rows(reader, header, message.target_channel, now, errors, counts):
                pending.append((len(pending), *row))
                if len(pending) == BATCH:
                    activity.append(conn, message.pk, event_batch.columns(pending), now)  # type: ignore[arg-type]
                    counts["events"] += len(pending)
                    pending = []
            if errors:
                # Raising rolls the whole import back: nothing of a bad file is kept.
                raise BadRequest(*errors[:MAX_ERRORS])
            if pending:
                activity.append(conn, message.pk, event_batch.columns(pending), now)  # type: ignore[arg-type]
                counts["events"] += len(pending)
    return Imported(wanted, message.target_channel, created, counts["recipients"],
                    counts["events"], counts["without_events"])

