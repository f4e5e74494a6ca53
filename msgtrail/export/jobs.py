"""Export jobs in the database: requested by the API, claimed by workers with a lease.

A worker renews its lease while it works; if it dies, the job is claimed again once
the lease has expired, and the URL handed out earlier serves the retried file.
"""

from __future__ import annotations

import json
import math
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Engine, func, select
from sqlalchemy.exc import IntegrityError

from msgtrail.apps import App
from msgtrail.clock import exact
from msgtrail.db import dialect
from msgtrail.db.schema import ACTIVE_STATES, jobs
from msgtrail.errors import RateLimited
from msgtrail.export.formats import FORMATS
from msgtrail.messages import Message

# Before a job has progress of its own, assume this export rate for Retry-After.
ASSUMED_ROWS_PER_SECOND = 500_000


@dataclass
class Job:
    id: int
    export_id: str
    kind: str
    account_id: int
    app_pk: int
    message_pk: int | None
    params: dict[str, Any]
    state: str
    file_key: str
    url: str
    total_rows: int | None
    rows_written: int
    bytes: int | None
    attempts: int
    lease_owner: str | None
    lease_expires_at: float | None
    error: str | None
    email: str | None
    email_state: str | None
    email_attempts: int
    email_error: str | None
    email_next_at: float | None
    created_at: float
    started_at: float | None
    finished_at: float | None
    expires_at: float | None
    manifest: str | None
    marks: str | None

    @classmethod
    def from_row(cls, row: Any) -> Job:
        data = dict(row._mapping)
        data["params"] = json.loads(data["params"])
        return cls(**data)


def file_key(kind: str, app: App, message: Message | None, params: dict[str, Any],
             now: float) -> str:
    """`<random uuid>/<name>`: the random directory makes URLs unguessable. Exports are
    named as OneSignal names them (`.jsonl.gz` and `.parquet` in those formats); history
    reports are plain CSV; an app's activity export is named for the app."""
    stamp = datetime.fromtimestamp(now, UTC).strftime("%Y-%m-%dT%H-%M-%SZ")
    fmt = params.get("format", "csv")
    ext = FORMATS[fmt].suffix(params.get("compression") or FORMATS[fmt].compression)
    if kind == "activity":
        name = f"activity-{app.app_id}-{stamp}.{ext}"
    elif kind == "export" and message is not None:
        name = (f"events_audience-activity-{message.message_id}-{message.target_channel}-"
                f"{stamp}.{ext}")
    elif message is not None:
        name = f"message_history-{message.message_id}-{params['events']}-{stamp}.csv"
    else:
        raise ValueError(f"a {kind} job needs a message")
    return f"{uuid.uuid4()}/{name}"


def retry_after(job: Job, now: float) -> int:
    """Seconds until the account's running job should be done, from its own progress."""
    total = job.total_rows or 0
    if job.state == "running" and job.started_at and job.rows_written > 0:
        rate = job.rows_written / max(now - job.started_at, 1e-3)
    else:
        rate = ASSUMED_ROWS_PER_SECOND
    remaining = max(total - job.rows_written, 0) / rate
    if job.state == "running" and job.lease_expires_at and job.lease_expires_at < now:
        remaining += 1  # its worker vanished: another takes it over, then writes it all
    return max(1, math.ceil(remaining))


def active_job(conn: Connection, account_id: int) -> Job | None:
    row = conn.execute(select(jobs).where(jobs.c.account_id == account_id,
                                          jobs.c.state.in_(ACTIVE_STATES))).first()
    return Job.from_row(row) if row else None


def request(conn: Connection, kind: str, app: App, message: Message | None,
            params: dict[str, Any], total_rows: int | None, url_for: Callable[[str], str],
            email: str | None = None) -> Job:
    """Queue a job (of one message, or with none an app-level one), or hand back the
    identical one already running; 429 while another job of the account is active.
    Runs in the caller's write transaction. The job keeps the URL handed out,
    url_for(file key), for its email and status."""
    now = exact()
    message_pk = message.pk if message is not None else None
    active = active_job(conn, app.account_id)
    if active is not None:
        if (active.kind, active.app_pk, active.message_pk, active.params, active.email) == (
                kind, app.pk, message_pk, params, email):
            return active
        raise RateLimited(
            "Only one export at a time per account: another export is being generated. "
            "Retry after the number of seconds in the Retry-After header.",
            retry_after=retry_after(active, now))
    key = file_key(kind, app, message, params, now)
    values = dict(export_id=str(uuid.uuid4()), kind=kind, account_id=app.account_id,
                  app_pk=app.pk, message_pk=message_pk, params=json.dumps(params, sort_keys=True),
                  state="queued", file_key=key, url=url_for(key),
                  total_rows=total_rows,
                  email=email, email_state="pending" if email else None, created_at=now)
    try:
        with conn.begin_nested():
            job_id = conn.execute(jobs.insert().values(**values)).inserted_primary_key[0]  # type: ignore[index]
    except IntegrityError:
        # Another process started one between our check and insert (PostgreSQL).
        raced = active_job(conn, app.account_id)
        raise RateLimited("Only one export at a time per account.",
                          retry_after=retry_after(raced, now) if raced else 1) from None
    return get(conn, job_id)


def get(conn: Connection, job_id: int) -> Job:
    return Job.from_row(conn.execute(select(jobs).where(jobs.c.id == job_id)).one())


def find(conn: Connection, app: App, message: Message, export_id: str) -> Job | None:
    row = conn.execute(select(jobs).where(jobs.c.export_id == export_id,
                                          jobs.c.app_pk == app.pk,
                                          jobs.c.message_pk == message.pk)).first()
    return Job.from_row(row) if row else None


def find_in_app(conn: Connection, app: App, kind: str, export_id: str) -> Job | None:
    row = conn.execute(select(jobs).where(jobs.c.export_id == export_id,
                                          jobs.c.app_pk == app.pk, jobs.c.kind == kind)).first()
    return Job.from_row(row) if row else None


def of_app(conn: Connection, app: App, kind: str, limit: int, offset: int
           ) -> tuple[list[Job], int]:
    """A page of the app's jobs of this kind, newest first, and how many there are."""
    where = (jobs.c.app_pk == app.pk) & (jobs.c.kind == kind)
    total = conn.execute(select(func.count()).select_from(jobs).where(where)).scalar_one()
    rows = conn.execute(select(jobs).where(where).order_by(
        jobs.c.created_at.desc(), jobs.c.id.desc()).limit(limit).offset(offset)).all()
    return [Job.from_row(row) for row in rows], int(total)


def of_message(conn: Connection, app: App, message: Message, limit: int = 20) -> list[Job]:
    """The message's latest jobs, newest first."""
    rows = conn.execute(select(jobs).where(jobs.c.app_pk == app.pk,
                                           jobs.c.message_pk == message.pk)
                        .order_by(jobs.c.created_at.desc()).limit(limit)).all()
    return [Job.from_row(row) for row in rows]


def by_file_key(conn: Connection, key: str) -> Job | None:
    row = conn.execute(select(jobs).where(jobs.c.file_key == key)).first()
    return Job.from_row(row) if row else None


def _claim_one(engine: Engine, where: Any, order: Any, values: dict[str, Any]) -> Job | None:
    """Take the first job matching `where` and set `values` on it, in one transaction."""
    with engine.begin() as conn:
        job_id = dialect.claim(conn, jobs, where, order, values)
        return get(conn, job_id) if job_id is not None else None


def claim(engine: Engine, owner: str, lease_seconds: float) -> Job | None:
    """Take the oldest queued job, or a running one whose lease expired."""
    now = exact()
    return _claim_one(
        engine,
        (jobs.c.state == "queued")
        | ((jobs.c.state == "running") & (jobs.c.lease_expires_at < now)),
        jobs.c.created_at,
        dict(state="running", lease_owner=owner, lease_expires_at=now + lease_seconds,
             attempts=jobs.c.attempts + 1, rows_written=0, started_at=now, error=None))


def any_due(engine: Engine) -> bool:
    """Whether a job waits to be claimed (queued, or running on an expired lease): a
    read of the state index, cheap enough between every step of the upkeep."""
    with engine.connect() as conn:
        found = conn.execute(select(jobs.c.id).where(
            (jobs.c.state == "queued")
            | ((jobs.c.state == "running") & (jobs.c.lease_expires_at < exact()))
        ).limit(1)).first()
        conn.rollback()
    return found is not None


def heartbeat(engine: Engine, job: Job, owner: str, lease_seconds: float,
              rows_written: int, total_rows: int | None) -> bool:
    """Renew the lease and record progress; False if the job is no longer ours."""
    with engine.begin() as conn:
        values: dict[str, Any] = dict(lease_expires_at=exact() + lease_seconds,
                                      rows_written=rows_written)
        if total_rows is not None:
            values["total_rows"] = total_rows
        return conn.execute(jobs.update().where(
            jobs.c.id == job.id, jobs.c.lease_owner == owner, jobs.c.state == "running"
        ).values(**values)).rowcount == 1


# Called in the transaction that ends a job, with the job as it ended and how (ready,
# failed or expired): `msgtrail.notify.export_webhooks` records the app's notice there.
Ended = Callable[[Connection, "Job", str], None]


def finish(engine: Engine, job: Job, owner: str, written: dict[str, Any], ttl: float,
           marks: dict[str, int] | None = None, ended: Ended | None = None) -> bool:
    """The job is ready, its file described by `written` (a manifest without times),
    which is published in the same update, never before the file; with an activity
    export's snapshot `marks`, which its next_cursor continues from."""
    now = exact()
    manifest = {**written, "created_at": _iso(job.created_at), "expires_at": _iso(now + ttl)}
    with engine.begin() as conn:
        done = conn.execute(jobs.update().where(
            jobs.c.id == job.id, jobs.c.lease_owner == owner, jobs.c.state == "running"
        ).values(state="ready", rows_written=written["rows"], total_rows=written["rows"],
                 bytes=written["bytes"], manifest=json.dumps(manifest), finished_at=now,
                 marks=json.dumps(marks) if marks is not None else None,
                 expires_at=now + ttl, lease_expires_at=None)).rowcount == 1
        if done and ended is not None:
            ended(conn, get(conn, job.id), "ready")
        return done


def fail(engine: Engine, job: Job, owner: str, error: str, max_attempts: int,
         ended: Ended | None = None) -> None:
    """Record a failed attempt: queued again while attempts remain, else failed."""
    final = job.attempts >= max_attempts
    with engine.begin() as conn:
        done = conn.execute(jobs.update().where(jobs.c.id == job.id, jobs.c.lease_owner == owner)
                            .values(state="failed" if final else "queued", error=error,
                                    lease_owner=None, lease_expires_at=None,
                                    finished_at=exact() if final else None)).rowcount == 1
        if done and final and ended is not None:
            ended(conn, get(conn, job.id), "failed")


def claim_email(engine: Engine, owner: str, lease_seconds: float) -> Job | None:
    """Take a ready job whose report is still to be emailed (and due), or whose sender
    vanished mid-send."""
    now = exact()
    due = (jobs.c.email_state == "pending") & (
        jobs.c.email_next_at.is_(None) | (jobs.c.email_next_at <= now))
    stalled = (jobs.c.email_state == "sending") & (jobs.c.lease_expires_at < now)
    return _claim_one(
        engine, (jobs.c.state == "ready") & (jobs.c.expires_at > now) & (due | stalled),
        jobs.c.finished_at,
        dict(email_state="sending", lease_owner=owner, lease_expires_at=now + lease_seconds,
             email_attempts=jobs.c.email_attempts + 1))


def email_sent(engine: Engine, job: Job, owner: str, error: str | None, max_attempts: int,
               retry_seconds: float) -> str:
    """Record a send: `sent`, or after a failure `pending` again (with a doubling
    delay) until the attempts are spent, then `failed`. Returns the new state."""
    if error is None:
        state, next_at = "sent", None
    elif job.email_attempts >= max_attempts:
        state, next_at = "failed", None
    else:
        state = "pending"
        next_at = exact() + retry_seconds * 2 ** (job.email_attempts - 1)
    with engine.begin() as conn:
        conn.execute(jobs.update().where(jobs.c.id == job.id, jobs.c.lease_owner == owner)
                     .values(email_state=state, email_error=error, email_next_at=next_at,
                             lease_owner=None, lease_expires_at=None))
    return state


def release(engine: Engine, job: Job, owner: str) -> None:
    """Hand a job back to the queue (its worker is stopping); the attempt does not count."""
    with engine.begin() as conn:
        conn.execute(jobs.update().where(jobs.c.id == job.id, jobs.c.lease_owner == owner,
                                         jobs.c.state == "running")
                     .values(state="queued", lease_owner=None, lease_expires_at=None,
                             attempts=jobs.c.attempts - 1))


def _iso(moment: float | None) -> str | None:
    if moment is None:
        return None
    return datetime.fromtimestamp(moment, UTC).isoformat().replace("+00:00", "Z")


def manifest_url(public_url: str, key: str) -> str:
    """Where msgtrail serves a file's manifest: beside the file on its own /exports
    route, also when the store serves the file itself."""
    return f"{public_url}/exports/{key}.manifest.json"


def public_status(job: Job, public_url: str) -> dict[str, Any]:
    """The status as the API and the completion webhooks show it: with the manifest's
    URL, and an activity export's file URL under the name its request answered."""
    doc = {**status(job), "manifest_url": manifest_url(public_url, job.file_key)}
    if job.kind == "activity":
        doc["file_url"] = job.url
    return doc


def activity_filter(params: dict[str, Any]) -> dict[str, Any]:
    """An activity export's filter as its status and manifest show it (null: any)."""
    return {"message_ids": params.get("message_ids"), "events": params.get("events"),
            "since": _iso(params.get("since")), "until": _iso(params.get("until"))}


def status(job: Job) -> dict[str, Any]:
    """The job as the status endpoint shows it; absent values are omitted, not null."""
    doc: dict[str, Any] = {
        "export_id": job.export_id, "kind": job.kind, "state": job.state, "url": job.url,
        "rows_written": job.rows_written, "total_rows": job.total_rows, "bytes": job.bytes,
        "attempts": job.attempts, "created_at": _iso(job.created_at),
        "started_at": _iso(job.started_at), "finished_at": _iso(job.finished_at),
        "expires_at": _iso(job.expires_at), "error": job.error,
        "email": job.email, "email_state": job.email_state, "email_error": job.email_error,
        **({"events": job.params["events"]}
           if job.params.get("events") and job.kind != "activity" else {}),
        **({"filter": activity_filter(job.params),
            "format": job.params["format"], "compression": job.params["compression"],
            "cursor": job.params.get("cursor"),
            # The cursor lives on after the file expires: it is the job's snapshot.
            "next_cursor": job.export_id if job.marks is not None else None}
           if job.kind == "activity" else {}),
    }
    if job.state == "ready" and job.expires_at and job.expires_at <= exact():
        doc["state"] = "expired"
    elif job.state == "ready" and job.manifest:
        doc["manifest"] = json.loads(job.manifest)
    return {k: v for k, v in doc.items() if v is not None}
