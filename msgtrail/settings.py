"""Service settings, read from flags or MSGTRAIL_* environment variables."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Every knob of the service; the README's configuration table lists them."""

    model_config = SettingsConfigDict(env_prefix="MSGTRAIL_")

    data_dir: Path = Path("msgtrail-data")
    # Defaults derive from data_dir: <data_dir>/msgtrail.db and <data_dir>/files.
    database_url: str | None = None
    storage_url: str | None = None
    # Base of the URLs handed to clients; defaults to http://HOST:PORT of `serve`.
    public_url: str | None = None
    host: str = "127.0.0.1"
    port: int = 8000
    # Time windows, in seconds and days as OneSignal documents them.
    activity_retention_days: float = 30
    history_window_days: float = 7
    file_ttl_seconds: int = 3 * 24 * 3600
    # Background work: in-process workers of `serve` and how often they look for work.
    workers: int = 1
    poll_interval: float = 0.5
    # Export jobs: a worker holds a job for lease_seconds and renews the lease while
    # working; a job whose worker vanished is taken over once its lease expires.
    lease_seconds: float = 30
    max_attempts: int = 3
    purge_interval: float = 60
    # Requests per app to the export endpoints, in the `limits` library's notation;
    # counted in Redis when redis_url is set (shared by every API process), else in process.
    export_rate_limit: str = "60/minute"
    redis_url: str | None = None
    # Testing aid: seconds to pause after each chunk an export writes (a slow disk).
    export_chunk_delay: float = 0
    # Email of history reports. Without smtp_host, a request that asks for an email
    # is refused rather than silently not mailed.
    smtp_host: str | None = None
    smtp_port: int = 587
    smtp_user: str | None = None
    smtp_password: str | None = None
    smtp_security: Literal["starttls", "tls", "none"] = "starttls"
    smtp_sender: str = "msgtrail <msgtrail@localhost>"
    smtp_timeout: float = 30
    # A failed email is tried again after email_retry_seconds, doubling, max_attempts times.
    email_retry_seconds: float = 30
    # Completion webhooks: a failed delivery is tried again after webhook_retry_seconds,
    # doubling (at most an hour apart), until webhook_give_up_seconds after the event.
    webhook_retry_seconds: float = 30
    webhook_give_up_seconds: float = 24 * 3600
    webhook_timeout: float = 10
    # Allow webhook URLs on loopback and private networks (refused by default: SSRF).
    webhook_allow_private: bool = False
    # Ingestion limits of one request.
    max_events_per_request: int = 10_000
    max_request_bytes: int = 10 * 1024 * 1024
    # Webhook credentials are stored encrypted with this Fernet key (comma-separated:
    # the first encrypts, every one decrypts, so keys rotate). Unset, a key is kept in
    # <data_dir>/secret.key; several machines must share the same key.
    secret_key: str | None = None
    # Where an SNS signing certificate or SubscribeURL may come from: scheme and host.
    sns_host_pattern: str = r"^https://sns\.[a-z0-9-]+\.amazonaws\.com(\.cn)?$"
    # The roots an SNS signing certificate must chain to (a PEM bundle; unset: the
    # system's), and where its issuer may be fetched from when it comes without it.
    sns_ca_bundle: str | None = None
    # (Amazon Trust Services' hosts: crt.r2m01.amazontrust.com, ...)
    sns_issuer_pattern: str = r"^http://crt\.[a-z0-9-]+\.amazontrust\.com$"
    # Webhooks: how long an API process remembers an app's connections and whose API
    # key is whose; a disconnect, re-key or revoked key takes effect within this time.
    webhook_cache_seconds: float = 5
    # Mailgun and SendGrid: a signature whose timestamp is further than this from now
    # (older, or newer) is a replay and is refused.
    mailgun_max_age_seconds: int = 300
    sendgrid_max_age_seconds: int = 300

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

    def resolved_public_url(self) -> str:
        return (self.public_url or f"http://{self.host}:{self.port}").rstrip("/")

    def ensure_data_dir(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
