"""Retention: expired export files, and activity, rejected webhook events and the
audit trail past their windows, go on their own."""

from __future__ import annotations

import logging

from sqlalchemy import Engine, select, update

from msgtrail import audit
from msgtrail.clock import exact
from msgtrail.db.schema import jobs, messages, schedules, webhook_rejections
from msgtrail.export import jobs as jobs_mod
from msgtrail.files import BlobStore
from msgtrail.settings import Settings
from msgtrail.store import activity, upkeep

log = logging.getLogger("msgtrail.runtime.retention")

# A temporary file untouched this long belongs to a writer that is gone.
PARTIAL_MAX_AGE = 24 * 3600


def take_turn(engine: Engine, interval: float, now: float | None = None) -> bool:
    """True for the one worker, among all processes, whose turn it is to purge: it
    moves the next purge an interval ahead, in one conditional update."""
    now = exact() if now is None else now
    with engine.begin() as conn:
        taken = conn.execute(update(schedules).where(
            schedules.c.task == "purge", schedules.c.next_at <= now).values(
            next_at=now + interval)).rowcount
    return taken == 1


def purge(engine: Engine, store: BlobStore, settings: Settings,
          now: float | None = None, ended: jobs_mod.Ended | None = None) -> dict[str, int]:
    """Delete expired files and activity older than the retention window; `ended`
    hears of each job whose file expired, in the transaction that marks it."""
    now = exact() if now is None else now
    counts = {"files": 0, "messages": 0, "partials": 0, "rejections": 0, "audit": 0}
    with engine.connect() as conn:
        expired = conn.execute(select(jobs.c.id, jobs.c.file_key).where(
            jobs.c.state == "ready", jobs.c.expires_at <= now)).all()
        conn.rollback()
    for job_id, key in expired:
        with engine.begin() as conn:
            # Marked first: from here the URL answers 404, then the bytes go.
            marked = conn.execute(jobs.update().where(
                jobs.c.id == job_id, jobs.c.state == "ready").values(state="expired")).rowcount
            if marked and ended is not None:
                ended(conn, jobs_mod.get(conn, job_id), "expired")
        store.delete(key)
        counts["files"] += 1
    cutoff = int(now - settings.activity_retention_days * 86400)
    with engine.begin() as conn:
        old = conn.execute(select(messages.c.id).where(
            messages.c.purged_at.is_(None), messages.c.created_at < cutoff)).scalars().all()
    for message_pk in old:
        # Its counters outlive its activity: a message past the window still shows its
        # totals. Counted now if events came after they were last counted (a recount
        # only then). An event accepted between the count and the purge is purged
        # uncounted: a message that old no longer receives events.
        upkeep.refresh_stats(engine, message_pk)
        with engine.begin() as conn:
            activity.purge(conn, message_pk)
            upkeep.forget_recipients(conn, message_pk)
            conn.execute(messages.update().where(messages.c.id == message_pk).values(
                purged_at=int(now), pending_since=None))
        counts["messages"] += 1
    with engine.begin() as conn:
        # Rejected webhook events hold what providers sent (addresses among it): they
        # are kept no longer than the activity they failed to become.
        counts["rejections"] = conn.execute(webhook_rejections.delete().where(
            webhook_rejections.c.received_at < cutoff)).rowcount
        counts["audit"] = audit.purge(conn, now - settings.audit_retention_days * 86400)
    counts["partials"] = store.clean_partials(PARTIAL_MAX_AGE)
    if any(counts.values()):
        log.info("purged %s", counts)
    return counts
