"""Background work: export jobs and their emails, compacting activity, retention, and
(on a thread of each worker's own, so that a slow receiver never holds exports up) the
apps' completion webhooks.

A worker is a thread; `msgtrail serve` runs some beside the API and `msgtrail worker`
runs them on their own. Any number may run against one database and one store: jobs
are claimed with a lease that the worker renews while it works, so a job whose worker
died is taken over by another once the lease expires.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import os
import signal
import socket
import threading
import time
import uuid

from sqlalchemy import Engine, select

from msgtrail.clock import now
from msgtrail.db.schema import apps, messages
from msgtrail.export import jobs
from msgtrail.export.pipeline import LeaseLost, Progress, run_job
from msgtrail.files import BlobStore
from msgtrail.notify import export_webhooks, mailer
from msgtrail.runtime import logs, metrics, retention
from msgtrail.settings import Settings
from msgtrail.store import upkeep
from msgtrail.vault import Vault

log = logging.getLogger("msgtrail.runtime.worker")


class Worker:
    def __init__(self, settings: Settings, engine: Engine, store: BlobStore,
                 name: str = "worker") -> None:
        self.settings = settings
        self.engine = engine
        self.store = store
        self.name = name
        # Unique across processes and machines: the lease names its holder.
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{name}:{uuid.uuid4().hex[:8]}"
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._courier: threading.Thread | None = None
        self._vault: Vault | None = None
        self._ended = export_webhooks.on_end(settings)
        self._next_purge = 0.0
        self._progress: Progress | None = None
        # When the running job's lease was last renewed (time.monotonic()).
        self._renewed = 0.0
        # Set once it must hand back whatever job it runs or claims next (stopping).
        self._give_back = threading.Event()

    def run_once(self) -> bool:
        """Do one unit of work; False when there was none."""
        if time.monotonic() >= self._next_purge:
            # Each worker looks once an interval; one of them, anywhere, purges.
            self._next_purge = time.monotonic() + self.settings.purge_interval
            if retention.take_turn(self.engine, self.settings.purge_interval):
                retention.purge(self.engine, self.store, self.settings, ended=self._ended)
        job = jobs.claim(self.engine, self.owner, self.settings.lease_seconds)
        if job is not None:
            self.run_job(job)
            return True
        job = jobs.claim_email(self.engine, self.owner, self.settings.lease_seconds)
        if job is not None:
            self.send_email(job)
            return True
        return upkeep.compact_next(self.engine, now(), self.settings.upkeep_quiet_seconds,
                                   self.settings.upkeep_max_lag_seconds, self.run_waiting_jobs)

    def run_waiting_jobs(self) -> None:
        """Run the export jobs queued meanwhile (the upkeep calls this between its
        steps): an export never waits behind the upkeep of a big message, which takes
        seconds per million recipients. The upkeep then carries on where it was,
        unless the worker is stopping: then it ends there (_Stopping)."""
        if self._stop.is_set():
            raise _Stopping
        while not self._stop.is_set() and jobs.any_due(self.engine):
            job = jobs.claim(self.engine, self.owner, self.settings.lease_seconds)
            if job is None:  # another worker took it
                return
            self.run_job(job)

    def send_email(self, job: jobs.Job) -> None:
        """Mail the report's link; a failure is recorded on the job and tried again."""
        assert job.email and job.expires_at
        mail = mailer.report_email(self.settings, job.email, job.url, self._message_id(job),
                                   job.params["events"], job.rows_written, job.expires_at)
        try:
            mailer.send(self.settings, mail)
            error = None
        except Exception as exc:  # noqa: BLE001 - any SMTP or network failure: recorded, retried
            error = f"{type(exc).__name__}: {exc}"
        state = jobs.email_sent(self.engine, job, self.owner, error, self.settings.max_attempts,
                                self.settings.email_retry_seconds)
        log.info("%s: job %s email to %s: %s%s", self.name, job.export_id, job.email, state,
                 f" ({error})" if error else "")

    def _message_id(self, job: jobs.Job) -> str:
        with self.engine.connect() as conn:
            value = conn.execute(select(messages.c.message_id)
                                 .where(messages.c.id == job.message_pk)).scalar_one()
            conn.rollback()
        return str(value)

    def stalled(self) -> str | None:
        """Why this worker is not doing its work (its thread gone, or the lease of its
        running job not renewed for half the lease), or None."""
        if self._thread is not None and not self._thread.is_alive():
            return f"{self.name}: stopped"
        progress = self._progress
        late = time.monotonic() - self._renewed
        if progress is not None and not progress.done.is_set() and \
                late > self.settings.lease_seconds / 2:
            return f"{self.name}: its job's lease not renewed for {late:.0f} s"
        return None

    def run_job(self, job: jobs.Job) -> None:
        """Run the job; every line logged meanwhile carries its id, app and message."""
        # Busy from here: a stop meanwhile waits for it (or hands it back).
        progress = self._progress = Progress(total=job.total_rows)
        if self._give_back.is_set():  # claimed after the worker was told to hand back
            progress.lost.set()
        with logs.context(**self._job_fields(job)):
            self._run_job(job, progress)

    def _job_fields(self, job: jobs.Job) -> dict[str, str]:
        with self.engine.connect() as conn:
            app_id, message_id = conn.execute(
                select(apps.c.app_id, messages.c.message_id)
                .outerjoin(messages, messages.c.id == job.message_pk)
                .where(apps.c.id == job.app_pk)).one()
            conn.rollback()
        return {"job_id": job.export_id, "app_id": str(app_id),
                **({"message_id": str(message_id)} if message_id is not None else {})}

    def _run_job(self, job: jobs.Job, progress: Progress) -> None:
        self._renewed = time.monotonic()
        # (In the job's log context: a thread starts with an empty one.)
        beat = threading.Thread(target=contextvars.copy_context().run,
                                args=(self._heartbeat, job, progress),
                                name=f"{self.name}-lease", daemon=True)
        beat.start()
        log.info("%s: job %s (%s) attempt %d", self.name, job.export_id, job.kind, job.attempts)
        started = time.monotonic()
        try:
            written = run_job(self.engine, self.store, job, progress, self.settings)
        except LeaseLost:
            if self._stop.is_set():  # shutting down: hand the job back at once
                jobs.release(self.engine, job, self.owner)
                log.info("%s: job %s handed back on shutdown", self.name, job.export_id)
            else:
                log.warning("%s: job %s was taken over; this attempt stops", self.name,
                            job.export_id)
            return
        except Exception as exc:  # the job records the failure; the worker carries on
            log.exception("%s: job %s failed", self.name, job.export_id)
            metrics.JOBS_ENDED.labels(job.kind, "failed attempt").inc()
            jobs.fail(self.engine, job, self.owner, f"{type(exc).__name__}: {exc}",
                      self.settings.max_attempts, self._ended)
            return
        finally:
            progress.done.set()
            beat.join()
        took = time.monotonic() - started
        metrics.EXPORT_SECONDS.labels(job.kind).observe(took)
        metrics.EXPORT_ROWS_PER_SECOND.labels(job.kind).observe(
            written.manifest["rows"] / max(took, 1e-6))
        if jobs.finish(self.engine, job, self.owner, written.manifest,
                       self.settings.file_ttl_seconds, written.marks, self._ended):
            metrics.JOBS_ENDED.labels(job.kind, "ready").inc()
            log.info("%s: job %s ready: %d rows, %d bytes", self.name, job.export_id,
                     written.manifest["rows"], written.manifest["bytes"])
        else:
            log.warning("%s: job %s finished after its lease was lost", self.name, job.export_id)

    def deliver_once(self) -> bool:
        """Deliver one due completion webhook; False when none was due."""
        if self._vault is None:
            self._vault = Vault(self.settings)
        return export_webhooks.deliver_next(self.engine, self._vault, self.owner, self.settings)

    def _deliver(self) -> None:
        while not self._stop.is_set():
            try:
                busy = self.deliver_once()
            except Exception:  # a failed delivery is recorded and retried; carry on
                log.exception("%s: webhook delivery failed", self.name)
                busy = False
            if not busy:
                self._stop.wait(self.settings.poll_interval)

    def _heartbeat(self, job: jobs.Job, progress: Progress) -> None:
        """Renew the lease and record progress until the job ends or is lost."""
        # At least every second, so that the status endpoint shows live progress.
        interval = max(min(self.settings.lease_seconds / 3, 1.0), 0.05)
        while not progress.done.wait(interval):
            try:
                mine = jobs.heartbeat(self.engine, job, self.owner, self.settings.lease_seconds,
                                      progress.rows, progress.total)
            except Exception:  # the database is busy or away: try again, the lease is long
                log.exception("%s: lease renewal failed", self.name)
                continue
            if not mine:
                progress.lost.set()
                return
            self._renewed = time.monotonic()

    def run(self) -> None:
        while not self._stop.is_set():
            try:
                busy = self.run_once()
            except _Stopping:
                return
            except Exception:  # a failed unit must not kill the worker; it is retried
                log.exception("%s: work failed", self.name)
                busy = False
            if not busy:
                self._wake.wait(self.settings.poll_interval)
                self._wake.clear()

    def wake(self) -> None:
        """Look for work now rather than at the next poll."""
        self._wake.set()

    def start(self) -> None:
        self._thread = threading.Thread(target=self.run, name=self.name, daemon=True)
        self._thread.start()
        self._courier = threading.Thread(target=self._deliver, name=f"{self.name}-webhooks",
                                         daemon=True)
        self._courier.start()

    def stop_taking_work(self) -> None:
        """Claim nothing more; an upkeep in progress ends at its next pause."""
        self._stop.set()
        self._wake.set()

    def join(self, timeout: float) -> None:
        for thread in (self._thread, self._courier):
            if thread:
                thread.join(timeout)

    def busy(self) -> bool:
        """Whether it is running an export job."""
        return self._progress is not None and not self._progress.done.is_set()

    def hand_back(self) -> None:
        """Stop the running job now, and any it claims after: no file is written and
        the lease is released, so another worker takes it at once, without spending
        an attempt."""
        self._give_back.set()
        if self._progress is not None:
            self._progress.lost.set()


class _Stopping(Exception):
    """The worker is stopping: the upkeep ends at its next pause. What it leaves is
    derived data (merges are transactions; a page build unpublished is deleted by the
    next build)."""


def stop(pool: list[Worker], grace: float = 0, timeout: float = 30,
         hurry: threading.Event | None = None) -> None:
    """Stop the workers: they take no new work at once, their running exports have
    `grace` seconds to finish (less if `hurry` is set meanwhile) and are then handed
    back (`Worker.hand_back`)."""
    for worker in pool:
        worker.stop_taking_work()
    deadline = time.monotonic() + grace
    while (any(w.busy() for w in pool) and time.monotonic() < deadline
           and not (hurry and hurry.is_set())):
        time.sleep(0.05)
    for worker in pool:
        if worker.busy():
            log.info("%s: grace period over; handing its job back", worker.name)
        worker.hand_back()
    for worker in pool:
        worker.join(timeout)


def run_until_stopped(pool: list[Worker], grace: float) -> None:
    """Start the workers and run them until SIGTERM (or Ctrl-C), then `stop` them with
    `grace`; a second SIGTERM hands running exports back at once."""
    for worker in pool:
        worker.start()
    stopping = threading.Event()

    def on_term(*_: object) -> None:
        if stopping.is_set():
            for worker in pool:
                worker.hand_back()
        stopping.set()

    signal.signal(signal.SIGTERM, on_term)
    with contextlib.suppress(KeyboardInterrupt):
        # Woken ten times a second: a signal that lands on another thread (a busy
        # worker) does not interrupt a wait, and its handler runs only when this
        # thread runs.
        while not stopping.wait(0.1):
            pass
    log.info("stopping: running exports have %g s to finish", grace)
    stop(pool, grace)
