"""Demo data: one app with push, email and SMS messages and realistic activity."""

from __future__ import annotations

import random
import sys
import uuid
from pathlib import Path

from sqlalchemy import Engine

from msgtrail import apps, messages
from msgtrail.channels import EVENT_CODE
from msgtrail.clock import now
from msgtrail.store import activity, event_batch, upkeep

PUSH_FAILURES = (
    "InvalidRegistration: the FCM token is no longer valid",
    "NotRegistered: the app was uninstalled",
    "BadDeviceToken: APNs rejected the device token",
    "Unregistered: APNs reports the token inactive",
)
EMAIL_FAILURES = ("550 5.1.1 The email account that you tried to reach does not exist",
                  "552 5.2.2 Mailbox full")
SMS_FAILURES = ("30003 Unreachable destination handset", "30006 Landline or unreachable carrier")

MESSAGES = (
    ("push", 0.6, "Spring sale starts now", {"en": "20% off everything until Sunday"}),
    ("email", 0.3, "Your weekly digest", {"en": "Five stories picked for you"}),
    ("sms", 0.1, "Order shipped", {"en": "Your order is on its way"}),
)
PUSH_DEVICES = ("Android", "Android", "Android", "iOS", "iOS", "ChromePush", "SafariPush")


def _activity(channel: str, n: int, start: int, rng: random.Random):  # type: ignore[no-untyped-def]
    """Events for n recipients, in the order a delivery pipeline would report them."""
    recipients = []
    for _ in range(n):
        device = {"push": rng.choice(PUSH_DEVICES), "email": "Email", "sms": "SMS"}[channel]
        recipients.append((str(uuid.UUID(int=rng.getrandbits(128), version=4)),
                           str(uuid.UUID(int=rng.getrandbits(128), version=4)),
                           f"user-{rng.randrange(10**7)}", device))
    rows: list[tuple[str, int, int, str, str, str, str | None]] = []
    # A send throttled over half an hour; deliveries, opens and clicks trail off over
    # the hours after it, so the report's chart has a shape to show.
    sent_at = {sub: start + rng.randrange(1800) for sub, *_ in recipients}
    for sub, osid, ext, dev in recipients:
        rows.append((sub, EVENT_CODE["sent"], sent_at[sub], osid, ext, dev, None))
    for sub, osid, ext, dev in recipients:
        t = sent_at[sub] + 5 + int(rng.expovariate(1 / 90))
        roll = rng.random()
        if roll < 0.04:
            fail_event = {"push": "failed", "email": "bounced", "sms": "rejected"}[channel]
            reason = rng.choice({"push": PUSH_FAILURES, "email": EMAIL_FAILURES,
                                 "sms": SMS_FAILURES}[channel])
            rows.append((sub, EVENT_CODE[fail_event], t, osid, ext, dev, reason))
            if channel != "push":
                rows.append((sub, EVENT_CODE["failed"], t, osid, ext, dev, reason))
            continue
        rows.append((sub, EVENT_CODE["delivered"], t, osid, ext, dev, None))
        if channel == "email" and rng.random() < 0.25:
            rows.append((sub, EVENT_CODE["opened"], t + int(rng.expovariate(1 / 2400)),
                         osid, ext, dev, None))
        if rng.random() < 0.05:
            rows.append((sub, EVENT_CODE["clicked"], t + int(rng.expovariate(1 / 3600)),
                         osid, ext, dev, None))
        if rng.random() < 0.005:
            rows.append((sub, EVENT_CODE["unsubscribed"], t + 7200 + rng.randrange(3600),
                         osid, ext, dev, None))
    # The demo's clock is "now": nothing happened after it (a long tail might reach it).
    latest = start + 6 * 3600
    return [(sub, code, min(ts, latest), *rest) for sub, code, ts, *rest in rows]


def create_demo(engine: Engine, recipients: int, seed: int = 42) -> dict[str, object]:
    """Create the demo account, app, key and messages; returns what to print."""
    rng = random.Random(seed)
    with engine.begin() as conn:
        app, key = apps.create_app(conn, "Demo app", account="demo")
    start = now() - 6 * 3600
    created = []
    for channel, share, name, contents in MESSAGES:
        body = {"app_id": app.app_id, "name": name, "contents": contents,
                "headings": {"en": name}, "target_channel": channel}
        with engine.begin() as conn:
            # Created just before its first send, as a real message is.
            message = messages.create(conn, app, body, at=start - 60)
        rows = _activity(channel, max(1, int(recipients * share)), start, rng)
        for i in range(0, len(rows), 10_000):
            batch = [(seq, *row) for seq, row in enumerate(rows[i:i + 10_000])]
            with engine.begin() as conn:
                activity.append(conn, message.pk, event_batch.columns(batch), now())
        upkeep.refresh_stats(engine, message.pk)
        created.append((channel, message.message_id, int(recipients * share)))
    return {"app_id": app.app_id, "api_key": key, "account": "demo", "messages": created}


def invoked_as() -> tuple[str, str]:
    """How to run msgtrail and this Python again, as this process was started: the
    demo's commands must run as printed, from the same directory, without a venv
    activated (`.venv/bin/msgtrail`, not `msgtrail`)."""
    def shown(path: str) -> str:
        found = Path(path).absolute()
        try:
            return str(found.relative_to(Path.cwd()))
        except ValueError:
            return str(found)

    python = shown(sys.executable)
    program = sys.argv[0] if sys.argv else ""
    if program.endswith("__main__.py") or not Path(program).is_file():
        return f"{python} -m msgtrail", python
    return shown(program), python


def instructions(info: dict[str, object], base: str,
                 run: tuple[str, str] = ("msgtrail", "python")) -> str:
    """What `msgtrail demo` prints: where to sign in, the app's key, and commands to
    paste (curl, the export command, OneSignal's SDK), `run` being how to start
    msgtrail and Python (`invoked_as`)."""
    msgtrail, python = run
    app_id, key = info["app_id"], info["api_key"]
    first = info["messages"][0][1]  # type: ignore[index]
    lines = [f"Dashboard: {base}/  (sign in with the App ID and API key below)", "",
             f"app_id:  {app_id}", f"api_key: {key}", "", "messages:"]
    lines += [f"  {ch:<5} {mid}  ({n:,} recipients)" for ch, mid, n in info["messages"]]  # type: ignore[attr-defined]
    lines += [
        "", "Try:",
        f"  curl -H 'Authorization: Key {key}' '{base}/notifications?app_id={app_id}'",
        f"  curl -H 'Authorization: Key {key}' '{base}/notifications/{first}?app_id={app_id}'",
        "", "Export a message's audience activity (the URL answers 404 until the file is ready):",
        f"  curl -X POST -H 'Authorization: Key {key}' "
        f"'{base}/notifications/{first}/export_events?app_id={app_id}'",
        f"  MSGTRAIL_API_KEY={key} {msgtrail} export {first} --app-id {app_id} --base-url {base}",
        "", f"Or with OneSignal's Python SDK ({python} -m pip install onesignal-python-api):",
        f"  {python} -c \"import onesignal; from onesignal.api import default_api; "
        f"c = onesignal.Configuration(host='{base}', rest_api_key='{key}'); "
        "api = default_api.DefaultApi(onesignal.ApiClient(c)); "
        f"print(api.get_notification('{app_id}', '{first}'))\"",
        "", f"API docs: {base}/docs", "",
    ]
    return "\n".join(lines)
