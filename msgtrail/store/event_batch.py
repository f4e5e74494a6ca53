"""Parse and validate a batch of activity events (pure logic, no I/O) into the columns
the activity store keeps.

A batch is accepted whole or rejected whole: every bad event is named by index and
field. Three paths, each taken only when the one before cannot vouch for the batch:
- the common batch (NDJSON, integer times, no repeats) is parsed and checked by Arrow's
  JSON reader and compute kernels, which release the GIL, so two senders' requests are
  parsed on both cores (`bench/e2e.py`: serve used one core while ingesting before);
- anything else (ISO times, repeats, blank lines, a JSON object body) goes through the
  typed msgspec decoder and a Python loop;
- only a batch that one rejects is walked again field by field, to report every error
  rather than the first.
"""

from __future__ import annotations

import binascii
import io
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import msgspec
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pj

from msgtrail import csv_schema
from msgtrail.channels import CHANNEL_EVENTS, EVENT_CODE
from msgtrail.errors import BadRequest, PayloadTooLarge

MIN_TIMESTAMP = 946_684_800  # 2000-01-01: anything earlier is a unit mistake
FUTURE_SLACK = 24 * 3600  # clocks of delivery pipelines drift; a day ahead is plenty
MAX_TEXT = {"external_id": 512, "device_type": 32, "failure_message": 2048}

# (index in the batch, subscription, event, ts, onesignal_id, external_id, device_type,
# failure_message); ids are canonical lower-case UUID strings, as exports write them.
Row = tuple[int, str, int, int, str | None, str | None, str | None, str | None]

# Ids are checked all at once, one regex over the joined batch: parsing 20,000 UUIDs
# one by one was the largest cost of ingestion.
_UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
_UUID_LINES = re.compile(rf"(?:{_UUID}\n)*{_UUID}")


class EventIn(msgspec.Struct):
    subscription_id: str
    event: str
    timestamp: int | str | None = None
    onesignal_id: str | None = None
    external_id: str | None = None
    device_type: str | None = None
    failure_message: str | None = None


class BatchIn(msgspec.Struct):
    events: list[EventIn]


_batch_decoder = msgspec.json.Decoder(BatchIn)
_list_decoder = msgspec.json.Decoder(list[EventIn])


# The columns of stored events. A subscription id is kept as its 16 bytes (`keys`):
# the store is 23% smaller than with 36-character strings, and DuckDB groups the
# ids as 128-bit integers (docs/internals/store.md). `rec` is the event's
# place in the order msgtrail accepted the message's events: its position in the
# batch here, then (batch << REC_BITS) | position once the store numbers the batch
# (`activity.append`).
KEY = pa.binary(16)
SCHEMA = pa.schema([
    ("subscription_id", KEY),
    ("event", pa.int8()),
    ("ts", pa.int64()),
    ("onesignal_id", pa.string()),
    ("external_id", pa.string()),
    ("device_type", pa.string()),
    ("failure_message", pa.string()),
    ("rec", pa.int64()),
])
# A batch holds fewer events than this.
REC_BITS = 24


@dataclass
class ParsedBatch:
    events: pa.RecordBatch  # SCHEMA
    duplicates: int


def columns(rows: Sequence[Row]) -> pa.RecordBatch:
    """Validated rows, in the order given, as stored events' columns."""
    if not rows:
        return pa.RecordBatch.from_pylist([], SCHEMA)
    index, subs, events, ts, onesignal, external, device, failure = zip(*rows, strict=True)
    if max(index) >= 1 << REC_BITS:
        raise ValueError("a batch holds too many events")
    return pa.RecordBatch.from_arrays(
        [keys(pa.array(subs, pa.string())), pa.array(events, pa.int8()),
         pa.array(ts, pa.int64()),
         pa.array(onesignal, pa.string()), pa.array(external, pa.string()),
         pa.array(device, pa.string()), pa.array(failure, pa.string()),
         pa.array(index, pa.int64())], schema=SCHEMA)


def keys(ids: pa.Array) -> pa.Array:
    """Canonical UUID strings (lower case, with dashes) as their 16 bytes each, in the
    same order (bytes sort as their hex does). One decode of the whole buffer, not one
    per id."""
    n = len(ids)
    text = bytes(csv_schema.joined(ids))
    if ids.null_count or len(text) != 36 * n:
        raise ValueError("subscription ids must be canonical UUIDs")
    raw = binascii.a2b_hex(text.replace(b"-", b""))
    return pa.FixedSizeBinaryArray.from_buffers(KEY, n, [None, pa.py_buffer(raw)])


def _canonical_uuids(values: list[str]) -> list[str] | None:
    """The ids in canonical lower case, or None if any is not a UUID."""
    if not values:
        return values
    joined = "\n".join(values).lower()
    if _UUID_LINES.fullmatch(joined) is None:
        return None
    found = joined.split("\n")
    # An id holding a newline between two UUIDs matches too, and would shift every
    # later id onto the wrong event.
    return found if len(found) == len(values) else None


def parse_batch(body: bytes, ndjson: bool, channel: str, now: int, max_events: int) -> ParsedBatch:
    """Decode, validate and de-duplicate one request body, or raise BadRequest/413."""
    common = _common_batch(body, channel, now, max_events) if ndjson else None
    if common is not None:
        return ParsedBatch(common, 0)
    return _parse_exactly(body, ndjson, channel, now, max_events)


_JSON_FIELDS = pa.schema([
    ("subscription_id", pa.string()), ("event", pa.string()), ("timestamp", pa.int64()),
    ("onesignal_id", pa.string()), ("external_id", pa.string()),
    ("device_type", pa.string()), ("failure_message", pa.string())])
_JSON_READ = pj.ReadOptions(use_threads=False, block_size=1 << 30)
# Arrow refuses a value of another JSON type than the field's (a number for a string,
# a float or a string for the time, an object, a repeated key), as msgspec does.
_JSON_PARSE = pj.ParseOptions(explicit_schema=_JSON_FIELDS, unexpected_field_behavior="ignore")
_UUID_RE2 = f"^{_UUID}$"


def _common_batch(body: bytes, channel: str, now: int, max_events: int) -> pa.RecordBatch | None:
    """The NDJSON batch's columns if it is the common kind (one valid event per line,
    integer times, no (subscription, event) twice), checked in Arrow; None for
    anything else, which the exact path decides."""
    try:
        table = pj.read_json(io.BytesIO(body), read_options=_JSON_READ,
                             parse_options=_JSON_PARSE)
    except pa.ArrowException:
        return None
    n = table.num_rows
    # Arrow reads two objects on one line as two events, and skips blank lines: only a
    # body of exactly one object per line is the common kind.
    if not 0 < n <= min(max_events, 1 << REC_BITS) or n != body.count(b"\n") + (
            not body.endswith(b"\n")):
        return None
    table = table.combine_chunks()
    try:
        table.validate(full=True)  # Arrow's reader lets invalid UTF-8 through
    except pa.ArrowInvalid:
        return None
    subs = pc.utf8_lower(table.column("subscription_id"))
    osids = pc.utf8_lower(table.column("onesignal_id"))
    names = CHANNEL_EVENTS[channel]
    picked = pc.index_in(table.column("event"), value_set=pa.array(names))
    ts = pc.fill_null(table.column("timestamp"), now)
    texts = [table.column(f) for f in MAX_TEXT]
    if not (_every(pc.match_substring_regex(subs, _UUID_RE2))
            and _every(pc.or_kleene(pc.is_null(osids),
                                    pc.match_substring_regex(osids, _UUID_RE2)))
            and _every(pc.is_valid(picked))
            and _every(pc.and_(pc.greater_equal(ts, MIN_TIMESTAMP),
                               pc.less_equal(ts, now + FUTURE_SLACK)))
            and all(_text_fits(col, MAX_TEXT[f]) for f, col in zip(MAX_TEXT, texts,
                                                                     strict=True))):
        return None
    codes = pc.take(pa.array([EVENT_CODE[e] for e in names], pa.int8()), picked)
    pairs = pc.binary_join_element_wise(subs, pc.cast(codes, pa.string()), "/")
    if pc.count_distinct(pairs).as_py() != n:
        return None
    return pa.RecordBatch.from_arrays(
        [keys(subs.chunk(0)), codes.chunk(0), ts.chunk(0), osids.chunk(0),
         *(col.chunk(0) for col in texts), pa.array(range(n), pa.int64())], schema=SCHEMA)


def _text_fits(column: pa.ChunkedArray, size: int) -> bool:
    """Every value is null, or at most `size` characters without NUL."""
    return _every(pc.or_kleene(pc.is_null(column), pc.and_(
        pc.less_equal(pc.utf8_length(column), size),
        pc.invert(pc.match_substring(column, "\x00")))))


def _every(mask: pa.ChunkedArray) -> bool:
    """True only if every value is true (a null is not)."""
    return pc.all(mask, skip_nulls=False).as_py() is True


def _parse_exactly(body: bytes, ndjson: bool, channel: str, now: int,
                   max_events: int) -> ParsedBatch:
    # Checked once here: msgspec raises UnicodeDecodeError, not DecodeError, on bytes
    # that are not UTF-8 (a 500 before this check).
    try:
        body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadRequest(f"body: not valid UTF-8 ({exc})") from None
    if ndjson:
        lines = [line for line in body.split(b"\n") if line.strip()]
        _check_count(len(lines), max_events)
        slow = lambda: _ndjson_errors(lines, channel, now)  # noqa: E731
        try:
            events = _list_decoder.decode(b"[" + b",".join(lines) + b"]")
        except msgspec.DecodeError:
            raise BadRequest(*slow()) from None
    else:
        slow = lambda: _json_errors(body, channel, now, max_events)  # noqa: E731
        try:
            events = _batch_decoder.decode(body).events
        except msgspec.DecodeError:
            raise BadRequest(*slow()) from None
        _check_count(len(events), max_events)
    if not events:
        raise BadRequest("events: at least one event is required")
    subs = _canonical_uuids([ev.subscription_id for ev in events])
    osids = _canonical_uuids([ev.onesignal_id for ev in events if ev.onesignal_id is not None])
    if subs is None or osids is None:
        raise BadRequest(*slow())
    osid_iter = iter(osids)
    allowed = CHANNEL_EVENTS[channel]
    codes = {name: EVENT_CODE[name] for name in allowed}
    hi = now + FUTURE_SLACK
    rows: list[Row] = []
    errors: list[str] = []
    for i, ev in enumerate(events):
        # Hot loop: the common, valid event is checked inline; anything unusual goes
        # through _convert, which parses ISO times and words the errors.
        ts = ev.timestamp
        code = codes.get(ev.event)
        ext, dev, fm = ev.external_id, ev.device_type, ev.failure_message
        if (code is not None and type(ts) is int and MIN_TIMESTAMP <= ts <= hi
                and (ext is None or (len(ext) <= 512 and "\x00" not in ext))
                and (dev is None or (len(dev) <= 32 and "\x00" not in dev))
                and (fm is None or (len(fm) <= 2048 and "\x00" not in fm))):
            rows.append((i, subs[i], code, ts,
                         None if ev.onesignal_id is None else next(osid_iter), ext, dev, fm))
            continue
        osid = None if ev.onesignal_id is None else next(osid_iter)
        row = _convert(i, subs[i], ev.event, ts, osid, ext, dev, fm, allowed, now, errors)
        if row is not None:
            rows.append(row)
    if errors:
        raise BadRequest(*errors)
    return _dedupe(rows)


def _check_count(n: int, max_events: int) -> None:
    if n > max_events:
        raise PayloadTooLarge(f"events: {n} events in one request; at most {max_events} allowed")


def _dedupe(rows: list[Row]) -> ParsedBatch:
    """Collapse repeats of (subscription, event) within the batch: the earliest time
    wins, and each attribute keeps the first value given, whichever copy carried it."""
    best: dict[tuple[str, int], Row] = {}
    for row in rows:
        key = (row[1], row[2])
        seen = best.get(key)
        if seen is None:
            best[key] = row
            continue
        attrs = tuple(a if a is not None else b for a, b in zip(seen[4:], row[4:], strict=False))
        best[key] = (seen[0], seen[1], seen[2], min(seen[3], row[3]), *attrs)  # type: ignore[assignment]
    return ParsedBatch(columns(list(best.values())), len(rows) - len(best))


def _convert(i, sub, event, ts, osid, ext, dev, fm, allowed, now, errors) -> Row | None:  # type: ignore[no-untyped-def]
    where = f"events[{i}]"
    bad = len(errors)
    if event not in allowed:
        errors.append(f"{where}.event: {event!r} is not one of {', '.join(allowed)}")
    if ts is None:
        ts = now
    elif isinstance(ts, str):
        parsed = parse_iso(ts)
        if parsed is None:
            errors.append(f"{where}.timestamp: {ts!r} is neither unix seconds nor ISO 8601")
        ts = parsed
    if isinstance(ts, int) and not MIN_TIMESTAMP <= ts <= now + FUTURE_SLACK:
        errors.append(f"{where}.timestamp: {ts} is out of range (unix seconds, 2000-01-01 to now)")
    for field, value in (("external_id", ext), ("device_type", dev), ("failure_message", fm)):
        if value is not None and len(value) > MAX_TEXT[field]:
            errors.append(f"{where}.{field}: longer than {MAX_TEXT[field]} characters")
        if value is not None and "\x00" in value:
            # PostgreSQL text cannot hold NUL; no real value has one.
            errors.append(f"{where}.{field}: must not contain NUL characters")
    if len(errors) > bad:
        return None
    return (i, sub, EVENT_CODE[event], ts, osid, ext, dev, fm)


def parse_iso(text: str) -> int | None:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp())


# -- The slow path: report every error of a batch the typed decoder refused. --

def _json_errors(body: bytes, channel: str, now: int, max_events: int) -> list[str]:
    try:
        doc = msgspec.json.decode(body)
    except msgspec.DecodeError as exc:
        return [f"body: not valid JSON ({exc})"]
    if not isinstance(doc, dict) or not isinstance(doc.get("events"), list):
        return ['body: expected an object {"events": [...]}']
    _check_count(len(doc["events"]), max_events)
    errors: list[str] = []
    for i, obj in enumerate(doc["events"]):
        _loose_event(i, obj, channel, now, errors)
    return errors or ["body: invalid event batch"]


def _ndjson_errors(lines: list[bytes], channel: str, now: int) -> list[str]:
    errors: list[str] = []
    for i, line in enumerate(lines):
        try:
            obj = msgspec.json.decode(line)
        except msgspec.DecodeError as exc:
            errors.append(f"events[{i}]: line {i + 1} is not valid JSON ({exc})")
            continue
        _loose_event(i, obj, channel, now, errors)
    return errors or ["body: invalid event batch"]


def _loose_event(i: int, obj: object, channel: str, now: int, errors: list[str]) -> None:
    where = f"events[{i}]"
    if not isinstance(obj, dict):
        errors.append(f"{where}: must be an object")
        return
    bad = len(errors)
    sub = _uuid(obj.get("subscription_id"), f"{where}.subscription_id", errors, required=True)
    osid = _uuid(obj.get("onesignal_id"), f"{where}.onesignal_id", errors, required=False)
    event = obj.get("event")
    if not isinstance(event, str):
        errors.append(f"{where}.event: required, one of {', '.join(CHANNEL_EVENTS[channel])}")
        event = None
    ts = obj.get("timestamp")
    if ts is not None and (isinstance(ts, bool) or not isinstance(ts, (int, str))):
        errors.append(f"{where}.timestamp: must be unix seconds or an ISO 8601 string")
        ts = None
    texts = []
    for field in ("external_id", "device_type", "failure_message"):
        value = obj.get(field)
        if value is not None and not isinstance(value, str):
            errors.append(f"{where}.{field}: must be a string or null")
            value = None
        texts.append(value)
    if len(errors) > bad or event is None:
        return
    ext, dev, fm = texts
    _convert(i, sub, event, ts, osid, ext, dev, fm, CHANNEL_EVENTS[channel], now, errors)


def _uuid(value: object, where: str, errors: list[str], required: bool) -> str | None:
    if value is None:
        if required:
            errors.append(f"{where}: required (a UUID)")
        return None
    if isinstance(value, str) and re.fullmatch(_UUID, value.lower()):
        return value.lower()
    errors.append(f"{where}: {value!r} is not a UUID")
    return None
