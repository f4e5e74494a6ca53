"""Channels and the activity events each one records (pure logic, no I/O).

The order of EVENTS fixes each event's integer code in storage: append only.
"""

from __future__ import annotations

CHANNELS = ("push", "email", "sms")

EVENTS = (
    "sent",
    "delivered",
    "clicked",
    "failed",
    "unsubscribed",
    "opened",
    "bounced",
    "suppressed",
    "reported_spam",
    "rejected",
)
EVENT_CODE = {name: code for code, name in enumerate(EVENTS)}

_COMMON = ("sent", "delivered", "clicked", "failed", "unsubscribed")
CHANNEL_EVENTS: dict[str, tuple[str, ...]] = {
    "push": _COMMON,
    "email": (*_COMMON, "opened", "bounced", "suppressed", "reported_spam"),
    "sms": (*_COMMON, "suppressed", "rejected"),
}

# Events that mean the message did not reach the recipient.
FAILURE_EVENTS = ("failed", "bounced", "rejected")

# OneSignal's device_type names, mapped to the keys of platform_delivery_stats.
PLATFORM_KEYS = {
    "ios": "ios",
    "android": "android",
    "huawei": "android",
    "amazon": "android",
    "chromepush": "chrome_web_push",
    "chrome": "chrome_web_push",
    "firefoxpush": "firefox_web_push",
    "firefox": "firefox_web_push",
    "safaripush": "safari_web_push",
    "safari": "safari_web_push",
    "edge": "edge_web_push",
    "edgepush": "edge_web_push",
    "email": "email",
    "sms": "sms",
}


def platform_key(device_type: str | None, channel: str) -> str:
    """The platform_delivery_stats key for a recipient's device type."""
    if channel in ("email", "sms"):
        return channel
    return PLATFORM_KEYS.get((device_type or "").lower().replace(" ", ""), "android")
