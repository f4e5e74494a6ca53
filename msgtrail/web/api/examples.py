"""Example answers for /openapi.json, taken from a real run of `msgtrail demo` (ids
shortened to fixed ones): what "Try it out" will show, instead of `additionalProp1`."""

from __future__ import annotations

from typing import Any

APP = "2af48bbc-05df-4fb7-a8f6-18bd16c2315b"
MESSAGE = "2b08d63f-c8de-43a3-80ce-135c214e6d66"
EXPORT = "9e353a7f-a894-427b-ab10-c9bde55cf3c8"
ACTIVITY = "0e03f7ff-992f-4464-8bca-69c9b08f03fc"
BASE = "https://msgtrail.example.com/exports/0c1b989a-0d31-4e78-870d-648a8d12c608"
FILE = f"{BASE}/events_audience-activity-{MESSAGE}-push-2026-12-07T12-03-44Z.csv.gz"
FEED = f"{BASE}/activity-{APP}-2026-12-07T12-03-49Z.jsonl.gz"
HISTORY = f"{BASE}/message_history-{MESSAGE}-clicked-2026-12-07T12-03-47Z.csv"

_COUNTS = {"successful": 29, "failed": 1, "errored": 0, "converted": 1, "received": 29}
NOTIFICATION = {
    "id": MESSAGE, "app_id": APP, "name": "Order shipped", "target_channel": "sms",
    "contents": {"en": "Your order is on its way"}, "headings": {"en": "Order shipped"},
    "queued_at": 1796645016, "send_after": 1796645016, "remaining": 0, "canceled": False,
    **_COUNTS, "platform_delivery_stats": {"sms": _COUNTS}}
_MANIFEST = {
    "export_id": EXPORT, "format": "csv", "compression": "gzip",
    "columns": [{"name": "external_user_id", "type": "string"},
                {"name": "subscription_id", "type": "string"},
                {"name": "sent", "type": "timestamp"}, {"name": "delivered", "type": "timestamp"}],
    "rows": 180, "bytes": 10731,
    "sha256": "83a7e7ac5fd2916f40373cabb259e912e862bebaeeeac4f1ba0f5898fbb02e79",
    "filter": {"message_ids": [MESSAGE], "events": [], "since": None, "until": None},
    "cursor": None, "next_cursor": None, "created_at": "2026-12-07T12:03:44.274668Z",
    "expires_at": "2026-12-10T12:03:44.291262Z"}
EXPORT_STATUS = {
    "export_id": EXPORT, "kind": "export", "state": "ready", "url": FILE,
    "rows_written": 180, "total_rows": 180, "bytes": 10731, "attempts": 1,
    "created_at": "2026-12-07T12:03:44.274668Z", "started_at": "2026-12-07T12:03:44.280882Z",
    "finished_at": "2026-12-07T12:03:44.291262Z", "expires_at": "2026-12-10T12:03:44.291262Z",
    "manifest": _MANIFEST, "manifest_url": f"{FILE}.manifest.json"}
ACTIVITY_STATUS = {
    **EXPORT_STATUS, "export_id": ACTIVITY, "kind": "activity", "url": FEED, "file_url": FEED,
    "rows_written": 639, "total_rows": 639, "bytes": 22921, "format": "jsonl",
    "compression": "gzip", "next_cursor": ACTIVITY, "manifest_url": f"{FEED}.manifest.json",
    "filter": {"message_ids": None, "events": None, "since": None, "until": None},
    "manifest": {**_MANIFEST, "export_id": ACTIVITY, "format": "jsonl", "rows": 639,
                 "bytes": 22921, "next_cursor": ACTIVITY,
                 "filter": {"message_ids": None, "events": None, "since": None,
                            "until": None}}}

# (method, path) -> the 200 answer's example.
EXAMPLES: dict[tuple[str, str], Any] = {
    ("post", "/notifications"): {"id": MESSAGE, "external_id": None},
    ("get", "/notifications"): {"total_count": 3, "offset": 0, "limit": 1,
                                "notifications": [NOTIFICATION]},
    ("get", "/notifications/{message_id}"): NOTIFICATION,
    ("post", "/notifications/{message_id}/events"): {"accepted": 1, "duplicates": 0},
    ("post", "/notifications/{message_id}/export_events"): {
        "csv_file_url": FILE, "export_id": EXPORT, "manifest_url": f"{FILE}.manifest.json"},
    ("get", "/notifications/{message_id}/export_events/{export_id}"): EXPORT_STATUS,
    ("post", "/notifications/{message_id}/history"): {
        "success": True, "destination_url": HISTORY, "export_id": EXPORT,
        "manifest_url": f"{HISTORY}.manifest.json"},
    ("post", "/apps/{app_id}/activity_exports"): {
        "export_id": ACTIVITY, "file_url": FEED, "manifest_url": f"{FEED}.manifest.json"},
    ("get", "/apps/{app_id}/activity_exports/{export_id}"): ACTIVITY_STATUS,
    ("get", "/apps/{app_id}/activity_exports"): {"total_count": 1, "offset": 0, "limit": 20,
                                                 "exports": [ACTIVITY_STATUS]},
    ("get", "/apps/{app_id}/audit"): {"events": [{
        "id": 4, "at": "2026-12-07T12:03:49.459+00:00", "action": "export.requested",
        "via": "api", "key_prefix": "mtk_wgVD2J39", "remote_addr": "203.0.113.7",
        "detail": {"kind": "activity", "export_id": ACTIVITY, "format": "jsonl"}}],
        "next_before": 4},
    ("get", "/apps/{app_id}/webhook_rejections"): {"total_count": 1, "offset": 0, "limit": 50,
                                                   "rejections": [{
        "id": 7, "source": "postmark", "reason": "no msgtrail_message_id in the event",
        "message_id": None, "received_at": 1796645100,
        "event": {"RecordType": "Delivery", "Recipient": "someone@example.com"}}]},
}
