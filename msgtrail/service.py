"""The service: the one object routes and pages ask for apps, messages, ingestion,
exports and files. It holds what a process shares (settings, the database engine, the
file store, the group commit, the caches, the rate limit); each method opens the
connections it needs and hands back plain values. The API and the dashboard reach it
through one FastAPI dependency (`msgtrail.web.deps.service`) and call the same methods,
so a rule holds the same for both."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any, TypeVar

from email_validator import EmailNotValidError, validate_email
from sqlalchemy import Connection, Engine, select

from msgtrail import apps, audit, messages
from msgtrail.apps import App
from msgtrail.audit import Actor
from msgtrail.channels import EVENTS
from msgtrail.clock import exact, now
from msgtrail.db.schema import messages as messages_table
from msgtrail.errors import BadRequest, NotFound, Unauthorized, Unavailable
from msgtrail.export import history_csv, jobs, params
from msgtrail.export.pipeline import rows_from_totals, selected_events
from msgtrail.export.rate_limit import RateLimit
from msgtrail.files import HealthCheck, Served, open_store
from msgtrail.ingest import connections, intake, receive, test_event
from msgtrail.ingest.connectors.base import WebhookRequest
from msgtrail.ingest.intake import Delivery, GroupCommit, Outcome
from msgtrail.inputs import require_uuid
from msgtrail.messages import Message
from msgtrail.notify import export_webhooks
from msgtrail.runtime import metrics, readiness
from msgtrail.runtime.shutdown import Shutdown
from msgtrail.settings import Settings
from msgtrail.store import activity, counters, kept, upkeep
from msgtrail.store.event_batch import parse_batch
from msgtrail.vault import Vault

PURGED = ("No message exists with the provided `message_id` in this app, or the message is "
          "older than {days:g} days and its audience activity has been purged.")
T = TypeVar("T")
BAD_KEY = "Missing or invalid REST API key for the app."

# A presigned URL outlives the file by this much, so that after the file is deleted
# it answers 404 NoSuchKey (as the seed says) rather than 403 "Request has expired".
PRESIGN_MARGIN_SECONDS = 86_400


class Service:
    """One per ASGI application (and so per API process)."""

    def __init__(self, settings: Settings, engine: Engine) -> None:
        self.settings = settings
        self.engine = engine
        self.store = open_store(settings.resolved_storage_url())
        self.store_healthy = HealthCheck(self.store)
        self.vault = Vault(settings)
        self.intake = GroupCommit(engine)
        # Draining from the first SIGTERM, hurrying from the second.
        self.shutdown = Shutdown()
        self.counting = kept.Counting(engine, stopping=self.shutdown.draining.is_set)
        self.lookups = receive.Lookups(engine, self.vault, settings.webhook_cache_seconds)
        self.export_limit = RateLimit(settings.export_rate_limit,
                                      settings.redis_url or "memory://")
        # Queuing a job wakes the in-process workers (set when they start); workers
        # elsewhere find it by polling.
        self.wake_workers: Callable[[], None] = lambda: None
        # Why the in-process workers are not doing their work (set when they start).
        self.workers_stalled: Callable[[], list[str]] = lambda: []

    def close(self) -> None:
        self.intake.close()
        self.counting.close()

    def _read(self, query: Callable[[Connection], T]) -> T:
        """What `query` reads on a connection of its own, in a transaction rolled back
        (nothing it read stays locked)."""
        with self.engine.connect() as conn:
            try:
                return query(conn)
            finally:
                conn.rollback()

    # Health

    def database_error(self) -> str | None:
        """Why the database does not answer, or None when it does."""
        return readiness.database_error(self.engine)

    def not_ready(self) -> list[str]:
        """Why this process should not get traffic (`runtime.readiness`): empty when
        ready."""
        return readiness.problems(self.engine, self.store, self.workers_stalled())

    # Apps and dashboard sign-ins

    def app_for_key(self, key: str) -> App | None:
        return self._read(lambda conn: apps.authenticate(conn, key))

    def app_for_key_hash(self, digest: str) -> App | None:
        return self._read(lambda conn: apps.by_key_hash(conn, digest))

    def require_app(self, key: str, app_id: str | None) -> App:
        """The app of an API key. A key never reaches another app: a foreign app_id is
        answered exactly like one that does not exist."""
        app = self.app_for_key(key)
        if app is None:
            raise Unauthorized(BAD_KEY)
        wanted = require_uuid(app_id, "app_id")
        if wanted != app.app_id:
            raise NotFound(f"No app with id {wanted}")
        return app

    def open_session(self, token_hash: str, app_pk: int, key_hash: str, csrf: str,
                     ttl: float, actor: Actor) -> None:
        with self.engine.begin() as conn:
            apps.open_session(conn, token_hash, app_pk, key_hash, csrf, now(), ttl)
            audit.record(conn, app_pk, "dashboard.signed_in", actor)

    def session(self, token_hash: str) -> tuple[str, int, str, str] | None:
        return self._read(lambda conn: apps.session(conn, token_hash))

    def close_session(self, token_hash: str, actor: Actor) -> None:
        with self.engine.begin() as conn:
            found = apps.session(conn, token_hash)
            apps.close_session(conn, token_hash)
            if found is not None:
                audit.record(conn, found[1], "dashboard.signed_out", actor)

    def audit_trail(self, app: App, limit: int, before: int | None
                    ) -> tuple[list[dict[str, Any]], int | None]:
        """A page of the app's audit trail, newest first, and the cursor of the next."""
        return self._read(lambda conn: audit.page(conn, app.pk, limit, before))

    # An app's own settings: keys, connectors, completion webhook, history (the
    # dashboard's pages; the command line calls the same functions)

    def keys(self, app: App) -> list[apps.Key]:
        return self._read(lambda conn: apps.keys(conn, app))

    def issue_key(self, app: App, actor: Actor) -> str:
        with self.engine.begin() as conn:
            return apps.issue_key(conn, app.app_id, actor)

    def rotate_key(self, app: App, actor: Actor) -> str:
        with self.engine.begin() as conn:
            return apps.rotate_key(conn, app.app_id, actor)

    def revoke_key(self, app: App, prefix: str, actor: Actor) -> int:
        if not prefix:
            raise BadRequest("key_prefix: which key to revoke")
        with self.engine.begin() as conn:
            return apps.revoke_keys(conn, app.app_id, prefix, actor)

    def connectors(self, app: App) -> list[str]:
        """The providers whose webhooks the app takes."""
        return self._read(lambda conn: connections.sources(conn, app))

    def connect(self, app: App, source: str, options: dict[str, Any], actor: Actor
                ) -> str:
        """Take a provider's webhooks for the app; the URL to give its console (Postmark's
        holds its generated password: shown this once)."""
        with self.engine.begin() as conn:
            _, credential = connections.connect(conn, self.vault, app.app_id, source, actor,
                                                **options)
        return connections.webhook_url(self.settings.resolved_public_url(), source,
                                       app.app_id, credential)

    def connector_events(self, app: App, source: str) -> list[dict[str, Any]]:
        """The last events the app's connector of `source` received, newest first."""
        return intake.recent_events(self.engine, app.pk, source)

    def send_test_event(self, app: App, source: str) -> tuple[bool, str]:
        """A test event through the app's connector (`ingest.test_event`)."""
        credential = self._read(lambda conn: connections.credential(conn, self.vault, app,
                                                                     source))
        return test_event.send(self.settings.resolved_public_url(), source, app.app_id,
                               credential)

    def disconnect(self, app: App, source: str, actor: Actor) -> bool:
        with self.engine.begin() as conn:
            return connections.disconnect(conn, app.app_id, source, actor)

    def completion_webhook(self, app: App) -> tuple[str | None, list[dict[str, Any]]]:
        """The app's completion webhook URL and its latest deliveries."""
        return self._read(lambda conn: (apps.webhook_url(conn, app),
                                        export_webhooks.recent(conn, app.pk)))

    def set_completion_webhook(self, app: App, url: str | None, rotate: bool, actor: Actor
                               ) -> str | None:
        """Set ('' removes) the URL or rotate the secret; the new secret, if one was
        issued (shown once)."""
        if url:
            export_webhooks.check_url(url, self.settings.webhook_allow_private)
        with self.engine.begin() as conn:
            _, secret = apps.set_webhook(conn, self.vault, app.app_id, url, rotate, actor)
        return secret

    def set_history(self, app: App, enabled: bool, actor: Actor) -> None:
        with self.engine.begin() as conn:
            apps.set_history(conn, app.app_id, enabled, actor)

    # Messages

    def create_message(self, app: App, body: dict[str, Any]) -> Message:
        with self.engine.begin() as conn:
            return messages.create(conn, app, body)

    def message(self, app: App, message_id: str, wait: bool = True) -> Message:
        """The app's message with its counters current (recomputed if events arrived);
        NotFound for another app's. Without `wait`, what a page shows (`store.kept`):
        the counters as kept, however many events came since (`pending_since` says
        since when); a message never counted is counted now if small, else on the
        counting thread (its `stats` None meanwhile)."""
        found = self._read(lambda conn: messages.find(conn, app, message_id))
        return self._fresh(found) if wait else self._kept(found)

    def messages(self, app: App, limit: int, offset: int, name: str | None = None,
                 wait: bool = True) -> tuple[int, list[Message]]:
        """A page of the app's messages, newest first, each with current counters (as
        `message` gives them, without `wait`)."""
        total, found = self._read(lambda conn: messages.page(conn, app, limit, offset, name))
        return total, [self._fresh(m) if wait else self._kept(m) for m in found]

    def _fresh(self, message: Message) -> Message:
        upkeep.refresh_stats(self.engine, message.pk)
        return self._read(lambda conn: messages.by_pk(conn, message.pk))

    def _kept(self, message: Message) -> Message:
        if message.stats is not None:
            return message
        if kept.small(self.engine, message.pk):
            return self._fresh(message)
        self.counting.ask(message.pk)
        return message

    def live_message(self, app: App, message_id: str) -> Message:
        """The app's message while its activity is kept; 404 once it was purged."""
        message_id = require_uuid(message_id, "message_id")
        purged = NotFound(PURGED.format(days=self.settings.activity_retention_days))
        try:
            message: Message = self._read(lambda conn: messages.find(conn, app, message_id))
        except NotFound:
            raise purged from None
        if message.purged_at is not None:
            raise purged
        return message

    def timeline(self, message: Message) -> counters.Timeline | None:
        """Recipients per event and time bucket (`counters.timeline`), as a page shows
        them: as its counters keep it, else read afresh if the message is small; None
        for a big one (the counting thread reads it)."""
        found = kept.timeline(message)
        if found is not None:
            return found
        if not kept.small(self.engine, message.pk):
            self.counting.ask(message.pk)
            return None
        return kept.read_timeline(self.engine, message)

    def audience(self, message: Message, events: list[str], limit: int,
                 after: str | None = None, find: str | None = None
                 ) -> list[dict[str, Any]] | None:
        """The first recipients by subscription id (`counters.sample`), those with one
        of `events` if given, past `after`, or the one `find` names, as a page shows
        them (`kept.recipients`): None while a big message has no pages yet (the
        counting thread builds them)."""
        found = kept.recipients(self.engine, message, events, limit, after, find)
        if found is None:
            self.counting.ask(message.pk)
        return found

    # Ingestion

    def ingest(self, app: App, message_id: str, body: bytes, ndjson: bool) -> dict[str, int]:
        """A batch of events of one message, all or nothing."""
        message_id = require_uuid(message_id, "message_id")
        message: Message = self._read(lambda conn: messages.find(conn, app, message_id))
        batch = parse_batch(body, ndjson, message.target_channel, now(),
                            self.settings.max_events_per_request)
        with self.engine.begin() as conn:
            activity.append(conn, message.pk, batch.events, now())
        metrics.EVENTS_ACCEPTED.labels("api").inc(batch.events.num_rows)
        return {"accepted": batch.events.num_rows, "duplicates": batch.duplicates}

    def webhook_cached(self, app_id: str, source: str, req: WebhookRequest) -> bool:
        """Whether checking the request needs nothing outside memory."""
        key = receive.bearer(req) if source == "onesignal" else None
        return source != "ses" and self.lookups.known(app_id, source, key)

    def webhook_delivery(self, source: str, app_id: str, req: WebhookRequest) -> Delivery:
        """The request authenticated as its provider signs it, and its events."""
        try:
            return receive.delivery(self.lookups, self.settings, source, app_id, req)
        except Unauthorized:
            metrics.SIGNATURE_FAILURES.labels(source).inc()
            raise

    async def record(self, delivery: Delivery) -> Outcome:
        """The delivery's events, once durable (joined to the next group commit)."""
        return await asyncio.wrap_future(self.intake.submit(delivery))

    def rejections(self, app: App, source: str | None, limit: int,
                   offset: int) -> dict[str, Any]:
        return intake.rejections(self.engine, app.pk, source, limit, offset)

    # Exports

    def request_export(self, app: App, actor: Actor, message_id: str, events: Any, raw: bool,
                       fmt: str = "csv") -> dict[str, str]:
        """Queue an export of the app's message."""
        message = self.live_message(app, message_id)
        wanted = params.channel_events(events, message.target_channel)
        self.export_limit.hit(app.app_id)
        job = self._start(app, actor, message, "export", {
            **params.job_params(wanted, raw), **({"format": fmt} if fmt != "csv" else {})})
        return {"csv_file_url": job.url, "export_id": job.export_id,
                "manifest_url": self._manifest_url(job.file_key)}

    def request_history(self, app: App, actor: Actor, message_id: str, events: Any, email: Any,
                        csv_raw: bool) -> dict[str, Any]:
        """Queue a history report of the app's message, mailed to `email` if given."""
        message = self.live_message(app, message_id)
        if events not in history_csv.EVENTS:
            raise BadRequest(f"events: must be one of {', '.join(history_csv.EVENTS)} "
                             f"(got {json.dumps(events)})")
        if email is not None:
            try:
                email = validate_email(email, check_deliverability=False).normalized
            except (EmailNotValidError, TypeError):
                raise BadRequest("param `email` must be a valid email") from None
            if not self.settings.smtp_host:
                raise BadRequest("email: this server has no SMTP server configured "
                                 "(MSGTRAIL_SMTP_HOST), so it cannot email the report; "
                                 "leave out `email` and poll destination_url instead")
        if not app.history_enabled:
            raise BadRequest("Send History via API is turned off for this app. Turn it on "
                             f"with `msgtrail apps update {app.app_id} --history on`.")
        days = self.settings.history_window_days
        if message.created_at < now() - days * 86400:
            raise BadRequest(f"Message history is only available for {days:g}"
                             " days after the message was sent.")
        self.export_limit.hit(app.app_id)
        job = self._start(app, actor, message, "history", params.job_params(events, csv_raw),
                          email)
        return {"success": True, "destination_url": job.url, "export_id": job.export_id,
                "manifest_url": self._manifest_url(job.file_key)}

    def request_activity_export(self, app: App, actor: Actor, body: dict[str, Any]
                                ) -> dict[str, str]:
        """Queue an export of the app's activity, per event, filtered as `body` says."""
        wanted = params.activity_filter(body)
        wanted["message_ids"] = self._live_ids(app, wanted["message_ids"])
        wanted["events"] = params.event_names(wanted["events"], EVENTS) or None
        wanted["cursor"] = self._cursor(app, wanted["cursor"])
        self.export_limit.hit(app.app_id)
        job = self._start(app, actor, None, "activity", wanted)
        return {"export_id": job.export_id, "file_url": job.url,
                "manifest_url": self._manifest_url(job.file_key)}

    def _live_ids(self, app: App, raw: Any) -> list[str] | None:
        """The app's messages to export (None: all), each kept and live."""
        if raw is None:
            return None
        if not isinstance(raw, list) or not raw or len(raw) > params.MAX_MESSAGE_IDS:
            raise BadRequest(f"message_ids: a list of 1 to {params.MAX_MESSAGE_IDS} "
                             "message ids")
        wanted = sorted({require_uuid(v if isinstance(v, str) else None, "message_ids[]")
                         for v in raw})
        found = set(self._read(lambda conn: conn.execute(
            select(messages_table.c.message_id).where(
                messages_table.c.app_pk == app.pk, messages_table.c.message_id.in_(wanted),
                messages_table.c.purged_at.is_(None))).scalars().all()))
        missing = [m for m in wanted if m not in found]
        if missing:
            raise BadRequest(f"message_ids: no message {', '.join(missing)} in this app, "
                             "or its activity was purged")
        return wanted

    def _cursor(self, app: App, raw: Any) -> str | None:
        """A `next_cursor` of one of the app's finished activity exports."""
        if raw is None:
            return None
        try:
            export_id = require_uuid(raw, "cursor") if isinstance(raw, str) else None
        except BadRequest:
            export_id = None
        job = self._read(lambda conn: jobs.find_in_app(conn, app, "activity", export_id)
                         ) if export_id else None
        if job is None or job.marks is None:
            raise BadRequest(f"cursor: {raw!r} is not the next_cursor of a finished "
                             "activity export of this app")
        return export_id

    def _start(self, app: App, actor: Actor, message: Message | None, kind: str,
               wanted: dict[str, Any], email: str | None = None) -> jobs.Job:
        """Queue a job (of a message, or of the whole app) once the store can take its
        file (503 otherwise), and record who asked for it."""
        if not self.store_healthy():
            raise Unavailable("Service temporarily unavailable: export storage cannot be "
                              "written")
        totals = ((message.stats or {}).get("totals") or {}) if message is not None else {}
        estimate = rows_from_totals(totals, selected_events(kind, wanted)) if totals else None
        with self.engine.begin() as conn:
            job = jobs.request(conn, kind, app, message, wanted, estimate,
                               lambda key: self._file_url(kind, key), email)
            audit.record(conn, app.pk, "export.requested", actor, kind=kind,
                         export_id=job.export_id,
                         message_id=message.message_id if message else None,
                         format=wanted.get("format"), email=bool(email) or None)
        self.wake_workers()
        return job

    def _file_url(self, kind: str, key: str) -> str:
        """Where the file will be: in S3 mode an export's URL is a presigned URL of the
        store itself, which serves the bytes; otherwise msgtrail's own /exports route
        (which history always uses, since its 403-until-ready cannot come from the
        store)."""
        if kind != "history":
            direct = self.store.presign(
                key, self.settings.file_ttl_seconds + PRESIGN_MARGIN_SECONDS)
            if direct:
                return direct
        return f"{self.settings.resolved_public_url()}/exports/{key}"

    def _manifest_url(self, key: str) -> str:
        return jobs.manifest_url(self.settings.resolved_public_url(), key)

    def _status(self, conn: Connection, job: jobs.Job) -> dict[str, Any]:
        return {**jobs.public_status(job, self.settings.resolved_public_url()),
                **export_webhooks.state(conn, job.id)}

    def _status_of(self, find: Callable[[Connection], jobs.Job | None],
                   missing: str) -> dict[str, Any]:
        def read(conn: Connection) -> dict[str, Any]:
            job = find(conn)
            if job is None:
                raise NotFound(missing)
            return self._status(conn, job)
        return self._read(read)

    def export_status(self, app: App, message_id: str, export_id: str) -> dict[str, Any]:
        """A message's export (or history report) as the status endpoint answers it."""
        message_id = require_uuid(message_id, "message_id")
        export_id = require_uuid(export_id, "export_id")
        return self._status_of(
            lambda conn: jobs.find(conn, app, messages.find(conn, app, message_id),
                                   export_id),
            f"No export with id {export_id} for this message")

    def activity_export_status(self, app: App, export_id: str) -> dict[str, Any]:
        export_id = require_uuid(export_id, "export_id")
        return self._status_of(
            lambda conn: jobs.find_in_app(conn, app, "activity", export_id),
            f"No activity export with id {export_id} in this app")

    def activity_exports(self, app: App, limit: int, offset: int) -> tuple[int, list[Any]]:
        """A page of the app's activity exports, newest first, with their total."""
        def read(conn: Connection) -> tuple[int, list[Any]]:
            found, total = jobs.of_app(conn, app, "activity", limit, offset)
            return total, [self._status(conn, job) for job in found]
        return self._read(read)

    def message_jobs(self, app: App, message: Message) -> list[jobs.Job]:
        """The message's latest jobs, newest first (the dashboard's list)."""
        return self._read(lambda conn: jobs.of_message(conn, app, message))

    def message_job(self, app: App, message_id: str, export_id: str) -> jobs.Job | None:
        """One job of the app's message, or None (no such message or job)."""
        def read(conn: Connection) -> jobs.Job | None:
            try:
                message = messages.find(conn, app, message_id)
            except NotFound:
                return None
            return jobs.find(conn, app, message, export_id)
        return self._read(read)

    # Files

    def ready_job(self, key: str) -> tuple[jobs.Job | None, bool]:
        """The job of a file key, and whether its file may be served now: ready and
        not expired."""
        job: jobs.Job | None = self._read(lambda conn: jobs.by_file_key(conn, key))
        ready = (job is not None and job.state == "ready"
                 and (job.expires_at or 0) > exact())
        return job, ready

    def downloaded(self, job: jobs.Job, name: str, actor: Actor) -> None:
        """Record that the job's file (or its manifest) was handed out."""
        with self.engine.begin() as conn:
            audit.record(conn, job.app_pk, "file.downloaded", actor, export_id=job.export_id,
                         name=name)

    def served(self, key: str, seconds: int) -> Served | None:
        """How the store serves a file: a URL valid `seconds`, a path or the bytes."""
        return self.store.served(key, seconds)
