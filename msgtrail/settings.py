"""Service settings, read from flags or MSGTRAIL_* environment variables."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Every knob of the service; each field's description is its entry in the settings
    reference (docs/reference/settings.md, generated from here)."""

    model_config = SettingsConfigDict(env_prefix="MSGTRAIL_")

    data_dir: Path = Field(
        default=Path("msgtrail-data"),
        description="where the embedded database and files live")
    # Defaults derive from data_dir: <data_dir>/msgtrail.db and <data_dir>/files.
    database_url: str | None = Field(
        default=None,
        description="`sqlite:///…` or `postgresql://user@host:5432/db` (unset: `sqlite:///<data "
        "dir>/msgtrail.db`)")
    storage_url: str | None = Field(
        default=None,
        description="where export files are written: a directory (served by the API) or "
        "`s3://BUCKET?endpoint=…&region=…` (unset: `<data dir>/files`)")
    # Base of the URLs handed to clients; defaults to http://HOST:PORT of `serve`.
    public_url: str | None = Field(
        default=None,
        description="base of URLs handed to clients (unset: `http://HOST:PORT`)")
    host: str = Field(default="127.0.0.1", description="where `serve` listens")
    port: int = Field(default=8000, description="where `serve` listens")
    # Time windows, in seconds and days as OneSignal documents them.
    activity_retention_days: float = Field(default=30, description="days of activity kept")
    audit_retention_days: float = Field(
        default=365,
        description="days the audit trail (keys, connectors, settings, exports, downloads, "
        "sign-ins) is kept")
    history_window_days: float = Field(
        default=7,
        description="days after sending that message history can be requested")
    file_ttl_seconds: int = Field(
        default=3 * 24 * 3600,
        description="how long export files are served; then they are deleted")
    # Background work: in-process workers of `serve` and how often they look for work.
    workers: int = Field(default=1, description="background workers inside `serve`")
    poll_interval: float = Field(
        default=0.5,
        description="seconds an idle worker waits before looking for work again")
    # Export jobs: a worker holds a job for lease_seconds and renews the lease while
    # working; a job whose worker vanished is taken over once its lease expires.
    lease_seconds: float = Field(
        default=30,
        description="a worker's lease on a job; renewed while it works, taken over by another "
        "worker once expired")
    max_attempts: int = Field(default=3, description="attempts of a job before it is marked failed")
    purge_interval: float = Field(
        default=60,
        description="seconds between retention passes (expired files, activity past its window)")
    # Upkeep of a message's activity (compaction, pages, counters) waits for its events
    # to pause, so as not to take SQLite's write lock from a pipeline in full flow.
    upkeep_quiet_seconds: float = Field(
        default=2,
        description="seconds a message's events must pause before workers compact its "
        "activity and build its pages")
    upkeep_max_lag_seconds: float = Field(
        default=60,
        description="seconds after which that upkeep runs even while events still flow")
    # A log line per request cost single-event webhooks a fifth of their rate: by
    # default only failed and slow requests get one (msgtrail.web.request_log).
    log_requests: Literal["all", "errors"] = Field(
        default="errors",
        description="log a line for every request (`all`), or only for those answered "
        "4xx/5xx or slower than 1 s (`errors`)")
    # On SIGTERM, a running export may finish within this; then it is handed back.
    shutdown_grace_seconds: float = Field(
        default=25,
        description="seconds a running export may take to finish once its process is told "
        "to stop (SIGTERM); after that, or at a second SIGTERM, it is handed back to the "
        "queue")
    # Litestream ships the embedded database's WAL here every second (operate/replica.py).
    replica_url: str | None = Field(
        default=None,
        description="replicate the embedded database continuously to "
        "`s3://BUCKET/PATH?endpoint=…&region=…` with Litestream (`msgtrail[replicate]`); needs "
        "`MSGTRAIL_SECRET_KEY`. Restore with `msgtrail restore --from-replica`")
    # Before the port closes on SIGTERM: /readyz fails and requests get 503 meanwhile.
    shutdown_delay_seconds: float = Field(
        default=0,
        description="seconds `serve` keeps its port open after SIGTERM, answering 503 with "
        "`Retry-After` (`/readyz` included), so that a load balancer takes it out first")
    # prometheus_client's multiprocess files: every serve and worker process of a
    # machine writes there, and /metrics of any of them sums them all.
    metrics_dir: Path | None = Field(
        default=None,
        description="where this machine's serve and worker processes keep their metrics "
        "[default: <data_dir>/metrics]")
    # Requests per app to the export endpoints, in the `limits` library's notation;
    # counted in Redis when redis_url is set (shared by every API process), else in process.
    export_rate_limit: str = Field(
        default="60/minute",
        description="export requests per app ([`limits`](https://limits.readthedocs.io) notation)")
    redis_url: str | None = Field(
        default=None,
        description="count rate limits in Redis, shared by every API process (see [Running at "
        "scale](../scale.md))")
    # Testing aid: seconds to pause after each chunk an export writes (a slow disk).
    export_chunk_delay: float = Field(
        default=0,
        description="testing aid: seconds a worker pauses after each 50,000-row chunk it writes")
    # Email of history reports. Without smtp_host, a request that asks for an email
    # is refused rather than silently not mailed.
    smtp_host: str | None = Field(
        default=None,
        description="SMTP server for emailing history reports; without it, a request with `email` "
        "is refused (400)")
    smtp_port: int = Field(default=587, description="the SMTP server's port")
    smtp_user: str | None = Field(default=None, description="login, when the server wants one")
    smtp_password: str | None = Field(default=None, description="login, when the server wants one")
    smtp_security: Literal["starttls", "tls", "none"] = Field(
        default="starttls",
        description="`starttls`, `tls` (implicit, e.g. port 465) or `none`")
    smtp_sender: str = Field(
        default="msgtrail <msgtrail@localhost>",
        description="the From address")
    smtp_timeout: float = Field(
        default=30,
        description="seconds to wait on the SMTP server before the attempt counts as failed")
    # A failed email is tried again after email_retry_seconds, doubling, max_attempts times.
    email_retry_seconds: float = Field(
        default=30,
        description="a failed email is tried again after this, doubling each time, `MAX_ATTEMPTS` "
        "times in all")
    # Completion webhooks: a failed delivery is tried again after webhook_retry_seconds,
    # doubling (at most an hour apart), until webhook_give_up_seconds after the event.
    webhook_retry_seconds: float = Field(
        default=30,
        description="a failed completion webhook is tried again after this, doubling, at most an "
        "hour apart")
    webhook_give_up_seconds: float = Field(
        default=24 * 3600,
        description="a completion webhook not taken within this is `failed`")
    webhook_timeout: float = Field(default=10, description="seconds a receiver has to answer")
    # Allow webhook URLs on loopback and private networks (refused by default: SSRF).
    webhook_allow_private: bool = Field(
        default=False,
        description="`1` allows webhook URLs on loopback and private networks (refused by "
        "default: SSRF)")
    # Ingestion limits of one request.
    max_events_per_request: int = Field(
        default=10_000,
        description="events in one ingestion request (413 beyond)")
    max_request_bytes: int = Field(
        default=10 * 1024 * 1024,
        description="bytes in one ingestion (or webhook) request (413 beyond)")
    # Webhook credentials are stored encrypted with this Fernet key (comma-separated:
    # the first encrypts, every one decrypts, so keys rotate). Unset, a key is kept in
    # <data_dir>/secret.key; several machines must share the same key.
    secret_key: str | None = Field(
        default=None,
        description="Fernet key that seals webhook credentials at rest; comma-separated to rotate "
        "(the first seals, all open). Every process of a deployment needs the same "
        "one: set it at scale (unset: `<data dir>/secret.key` (created, mode 0600))")
    # Where an SNS signing certificate or SubscribeURL may come from: scheme and host.
    sns_host_pattern: str = Field(
        default=r"^https://sns\.[a-z0-9-]+\.amazonaws\.com(\.cn)?$",
        description="where SNS signing certificates and SubscribeURLs may come from (scheme and "
        "host)")
    # The roots an SNS signing certificate must chain to (a PEM bundle; unset: the
    # system's), and where its issuer may be fetched from when it comes without it.
    sns_ca_bundle: str | None = Field(
        default=None,
        description="PEM file of the roots an SNS signing certificate must chain to (unset: the "
        "system's (`/etc/ssl/certs/ca-certificates.crt`))")
    # (Amazon Trust Services' hosts: crt.r2m01.amazontrust.com, ...)
    sns_issuer_pattern: str = Field(
        default=r"^http://crt\.[a-z0-9-]+\.amazontrust\.com$",
        description="where the issuer of an SNS signing certificate that came without it may be "
        "fetched from (its Authority Information Access; scheme and host)")
    # Webhooks: how long an API process remembers an app's connections and whose API
    # key is whose; a disconnect, re-key or revoked key takes effect within this time.
    webhook_cache_seconds: float = Field(
        default=5,
        description="how long an API process remembers an app's webhook credentials and whose key "
        "is whose: a disconnect, re-key or revoked key takes effect within this")
    # Mailgun and SendGrid: a signature whose timestamp is further than this from now
    # (older, or newer) is a replay and is refused.
    mailgun_max_age_seconds: int = Field(
        default=300,
        description="a Mailgun signature further than this from now is a replay (401)")
    sendgrid_max_age_seconds: int = Field(
        default=300,
        description="a SendGrid signature whose `X-Twilio-Email-Event-Webhook-Timestamp` is "
        "further than this from now is a replay (401)")

    def replay_window(self, source: str) -> int:
        """Seconds a provider's signed timestamp may be from now (0: it signs none)."""
        return {"mailgun": self.mailgun_max_age_seconds,
                "sendgrid": self.sendgrid_max_age_seconds}.get(source, 0)

    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'msgtrail.db').resolve()}"

    def resolved_storage_url(self) -> str:
        return self.storage_url or str((self.data_dir / "files").resolve())

    def resolved_metrics_dir(self) -> Path:
        return self.metrics_dir or self.data_dir / "metrics"

    def resolved_public_url(self) -> str:
        return (self.public_url or f"http://{self.host}:{self.port}").rstrip("/")

    def ensure_data_dir(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
