"""Completion webhooks: when an export or history report of an app becomes ready,
fails or expires, msgtrail POSTs a signed notice to the app's webhook URL.

The notice is recorded (`webhook_deliveries`) in the transaction that ends the job, so
it is never lost, and its body is fixed then: every retry sends the same event id and
bytes, freshly signed. Workers deliver it on a thread of their own, so a slow receiver
never holds an export up, and retry with a doubling delay for up to a day
(MSGTRAIL_WEBHOOK_GIVE_UP_SECONDS). The signature is Stripe's scheme
(`msgtrail.client.verify_webhook` checks it).

A webhook URL is a request msgtrail makes on a user's behalf, so it must not reach
msgtrail's own network (SSRF): loopback, private, link-local and other non-public
addresses are refused, when the URL is set and again at every delivery (a name may
resolve elsewhere later), unless MSGTRAIL_WEBHOOK_ALLOW_PRIVATE=1. A delivery connects
to the very address it checked, not to what a second lookup of the name gives: a name
whose DNS answers a public address to the check and a private one right after
(rebinding) still reaches only the public one.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import socket
import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx
from sqlalchemy import Connection, Engine, select

from msgtrail import __version__
from msgtrail.client import WEBHOOK_HEADER, sign_webhook
from msgtrail.clock import exact
from msgtrail.db import dialect
from msgtrail.db.schema import apps, webhook_deliveries
from msgtrail.db.schema import jobs as jobs_table
from msgtrail.errors import BadRequest
from msgtrail.export import jobs
from msgtrail.runtime import metrics
from msgtrail.settings import Settings
from msgtrail.vault import Vault

log = logging.getLogger("msgtrail.webhooks")

TYPES = {"ready": "export.ready", "failed": "export.failed", "expired": "export.expired"}
# The longest wait between two attempts, however many have failed.
MAX_DELAY_SECONDS = 3600


class UnsafeURL(BadRequest):
    """A webhook URL msgtrail will not call."""


def check_url(url: str, allow_private: bool) -> str:
    """The URL if msgtrail may POST to it: http(s), with a host whose every address is
    public (unless `allow_private`); UnsafeURL (a 400) saying why otherwise."""
    _checked(url, allow_private)
    return url


@dataclass(frozen=True)
class Target:
    """Where a delivery connects: the URL with its host replaced by the checked
    address, and the name the receiver expects (its Host header and TLS name)."""

    url: str
    host: str | None = None  # None: connect to the URL as it is
    hostname: str | None = None


def _checked(url: str, allow_private: bool) -> Target:
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        raise UnsafeURL(f"webhook URL has an invalid port: {url!r}") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UnsafeURL(f"webhook URL must be http(s)://host/…, not {url!r}")
    if parts.username or parts.password:
        raise UnsafeURL("webhook URL must not carry credentials")
    if allow_private:
        return Target(url)
    try:
        infos = socket.getaddrinfo(parts.hostname, port or 443, proto=socket.IPPROTO_TCP)
    except (socket.gaierror, UnicodeError):
        raise UnsafeURL(f"webhook URL's host {parts.hostname!r} does not resolve") from None
    addresses = [ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos]
    for address in addresses:
        if not is_public(address):
            raise UnsafeURL(
                f"webhook URL's host {parts.hostname!r} is {address}, a loopback, private or "
                "otherwise non-public address; set MSGTRAIL_WEBHOOK_ALLOW_PRIVATE=1 to allow it")
    first = addresses[0]
    literal = f"[{first}]" if first.version == 6 else str(first)
    netloc = f"{literal}:{port}" if port else literal
    return Target(parts._replace(netloc=netloc).geturl(), parts.netloc, parts.hostname)


def is_public(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    return address.is_global and not address.is_multicast


def record(conn: Connection, job: jobs.Job, how: str, settings: Settings) -> None:
    """In the transaction that ends `job` (`how`: ready, failed or expired): the
    notice to the app's webhook URL, if it has one."""
    url = conn.execute(select(apps.c.webhook_url).where(apps.c.id == job.app_pk)).scalar()
    if not url:
        return
    now = exact()
    event_id = f"evt_{uuid.uuid4().hex}"
    body = {"id": event_id, "type": TYPES[how], "created": int(now),
            "data": jobs.public_status(job, settings.resolved_public_url())}
    conn.execute(webhook_deliveries.insert().values(
        event_id=event_id, job_id=job.id, type=TYPES[how], url=url, body=json.dumps(body),
        state="pending", next_at=now, created_at=now))


def on_end(settings: Settings) -> jobs.Ended:
    """What `jobs.finish`, `jobs.fail` and retention call as a job ends: `record`."""
    return lambda conn, job, how: record(conn, job, how, settings)


def state(conn: Connection, job_id: int) -> dict[str, Any]:
    """The job's latest notice as its status shows it (nothing without one)."""
    row = conn.execute(select(webhook_deliveries.c.state, webhook_deliveries.c.attempts,
                              webhook_deliveries.c.error, webhook_deliveries.c.type)
                       .where(webhook_deliveries.c.job_id == job_id)
                       .order_by(webhook_deliveries.c.id.desc()).limit(1)).first()
    if row is None:
        return {}
    doc = {"webhook_state": row[0], "webhook_attempts": row[1], "webhook_error": row[2],
           "webhook_type": row[3]}
    return {k: v for k, v in doc.items() if v is not None}


def recent(conn: Connection, app_pk: int, limit: int = 20) -> list[dict[str, Any]]:
    """The app's latest completion notices, newest first, as the dashboard lists them."""
    t = webhook_deliveries
    rows = conn.execute(select(t.c.type, t.c.state, t.c.attempts, t.c.error, t.c.created_at,
                               t.c.delivered_at, jobs_table.c.export_id)
                        .join(jobs_table, jobs_table.c.id == t.c.job_id)
                        .where(jobs_table.c.app_pk == app_pk)
                        .order_by(t.c.id.desc()).limit(limit))
    return [{"type": r[0], "state": r[1], "attempts": r[2], "error": r[3],
             "created_at": r[4], "delivered_at": r[5], "export_id": r[6]} for r in rows]


@dataclass
class Delivery:
    id: int
    event_id: str
    job_id: int
    url: str
    body: str
    attempts: int
    created_at: float


def claim(engine: Engine, owner: str, lease_seconds: float) -> Delivery | None:
    """Take a notice that is due, or whose sender vanished mid-send."""
    now = exact()
    t = webhook_deliveries
    with engine.begin() as conn:
        delivery_id = dialect.claim(
            conn, t, ((t.c.state == "pending") & (t.c.next_at <= now))
            | ((t.c.state == "sending") & (t.c.lease_expires_at < now)), t.c.next_at,
            dict(state="sending", lease_owner=owner, lease_expires_at=now + lease_seconds,
                 attempts=t.c.attempts + 1))
        if delivery_id is None:
            return None
        row = conn.execute(select(t.c.id, t.c.event_id, t.c.job_id, t.c.url, t.c.body,
                                  t.c.attempts, t.c.created_at)
                           .where(t.c.id == delivery_id)).one()
    return Delivery(*row)


def _target(engine: Engine, vault: Vault, job_id: int) -> tuple[str, str] | None:
    """Where the job's app wants notices now, and its signing secret (a changed URL or
    rotated secret applies to retries too); None once its webhook was removed."""
    with engine.connect() as conn:
        row = conn.execute(select(apps.c.webhook_url, apps.c.webhook_secret).join(
            jobs.jobs, jobs.jobs.c.app_pk == apps.c.id).where(jobs.jobs.c.id == job_id)).first()
        conn.rollback()
    if row is None or not row[0] or not row[1]:
        return None
    return str(row[0]), str(vault.open(row[1])["secret"])


def send(delivery: Delivery, url: str, secret: str, settings: Settings) -> str | None:
    """POST the notice to `url`; None when the receiver took it (2xx), else why not."""
    try:
        target = _checked(url, settings.webhook_allow_private)
    except UnsafeURL as exc:
        return str(exc)
    body = delivery.body.encode()
    headers = {"Content-Type": "application/json", "User-Agent": f"msgtrail/{__version__}",
               WEBHOOK_HEADER: sign_webhook(secret, body, int(exact()))}
    if target.host:
        headers["Host"] = target.host
    try:
        # No redirects: a redirect could lead to an address the check above refuses.
        with httpx.Client(timeout=settings.webhook_timeout, follow_redirects=False) as client:
            r = client.post(target.url, content=body, headers=headers, extensions=(
                {"sni_hostname": target.hostname} if target.hostname else None))
    except httpx.HTTPError as exc:
        return f"{type(exc).__name__}: {exc}"
    if 200 <= r.status_code < 300:
        return None
    return f"HTTP {r.status_code}"


def deliver(engine: Engine, vault: Vault, delivery: Delivery, owner: str,
            settings: Settings) -> str:
    """Send a claimed notice and record how it went: delivered, or pending again after
    a doubling delay, or failed once a day (the give-up time) has passed. Returns the
    new state."""
    target = _target(engine, vault, delivery.job_id)
    error = send(delivery, *target, settings) if target else "the app's webhook was removed"
    now = exact()
    delay = min(settings.webhook_retry_seconds * 2 ** (delivery.attempts - 1), MAX_DELAY_SECONDS)
    if error is None:
        values: dict[str, Any] = dict(state="delivered", delivered_at=now, error=None)
    elif target and now + delay <= delivery.created_at + settings.webhook_give_up_seconds:
        values = dict(state="pending", next_at=now + delay, error=error)
    else:
        values = dict(state="failed", error=error)
    t = webhook_deliveries
    with engine.begin() as conn:
        conn.execute(t.update().where(t.c.id == delivery.id, t.c.lease_owner == owner)
                     .values(lease_owner=None, lease_expires_at=None, **values))
    metrics.COMPLETION_WEBHOOKS.labels(
        "retry" if values["state"] == "pending" else values["state"]).inc()
    log.info("webhook %s (%s) attempt %d: %s%s", delivery.event_id,
             target[0] if target else delivery.url,
             delivery.attempts, values["state"], f" ({error})" if error else "")
    return str(values["state"])


def deliver_next(engine: Engine, vault: Vault, owner: str, settings: Settings) -> bool:
    """Deliver one due notice; False when none was due."""
    delivery = claim(engine, owner, settings.lease_seconds)
    if delivery is None:
        return False
    deliver(engine, vault, delivery, owner, settings)
    return True
