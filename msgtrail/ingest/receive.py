"""A provider's webhook request, authenticated as the provider signs it and read into
the events of one delivery; and the lookups that keep the database out of that path
while a provider is in full flow."""

from __future__ import annotations

import threading
from typing import Any

import httpx
from cachetools import TTLCache
from sqlalchemy import Engine

from msgtrail import apps
from msgtrail.apps import App
from msgtrail.errors import Unavailable
from msgtrail.ingest import connections
from msgtrail.ingest.connectors import SOURCES
from msgtrail.ingest.connectors.base import Context, WebhookRequest
from msgtrail.ingest.intake import Delivery
from msgtrail.inputs import require_uuid
from msgtrail.settings import Settings
from msgtrail.vault import Vault


def fetch(url: str) -> bytes:
    """GET for SNS (certificates, subscription confirmations); the host was checked."""
    try:
        answer = httpx.get(url, timeout=10, follow_redirects=False)
        answer.raise_for_status()
    except httpx.HTTPError as exc:
        raise Unavailable(f"could not reach {url.split('?')[0]} ({exc})") from None
    return answer.content


class Lookups:
    """Who an app is, its source's credential and whose API key a request carries,
    remembered for `seconds`: the database is not asked on every event of a provider
    in full flow. So a disconnect, a re-key or a revoked key takes effect within that
    time in every API process (MSGTRAIL_WEBHOOK_CACHE_SECONDS)."""

    def __init__(self, engine: Engine, vault: Vault, seconds: float) -> None:
        self._engine, self._vault = engine, vault
        self._connections: TTLCache[tuple[str, str], tuple[App, dict[str, Any]]] = TTLCache(
            maxsize=4096, ttl=seconds)
        self._keys: TTLCache[str, str | None] = TTLCache(maxsize=4096, ttl=seconds)
        self._lock = threading.Lock()

    def known(self, app_id: str, source: str, key: str | None) -> bool:
        with self._lock:
            return (app_id, source) in self._connections and (
                key is None or apps.hash_key(key) in self._keys)

    def connection(self, app_id: str, source: str) -> tuple[App, dict[str, Any]]:
        with self._lock:
            found = self._connections.get((app_id, source))
        if found is None:
            with self._engine.connect() as conn:
                app = apps.get_app(conn, require_uuid(app_id, "app_id"))
                found = (app, connections.credential(conn, self._vault, app, source))
                conn.rollback()
            with self._lock:
                self._connections[(app_id, source)] = found
        return found

    def key_owner(self, key: str) -> str | None:
        digest = apps.hash_key(key)
        with self._lock:
            if digest in self._keys:
                return self._keys[digest]
        with self._engine.connect() as conn:
            owner = apps.authenticate(conn, key)
            conn.rollback()
        with self._lock:
            self._keys[digest] = None if owner is None else owner.app_id
        return None if owner is None else owner.app_id


def bearer(req: WebhookRequest) -> str | None:
    """The API key of a OneSignal Event Streams request (other sources have none)."""
    value = req.headers.get("authorization", "").strip().partition(" ")[2].strip()
    return value or None


def delivery(lookups: Lookups, settings: Settings, source: str, app_id: str,
             req: WebhookRequest) -> Delivery:
    """Authenticate the request as its provider signs it, then read its events."""
    module = SOURCES[source]
    app, credential = lookups.connection(app_id, source)
    ctx = Context(app_id=app.app_id, max_age_seconds=settings.replay_window(source),
                  sns_host_pattern=settings.sns_host_pattern, key_owner=lookups.key_owner,
                  fetch=fetch, sns_ca_bundle=settings.sns_ca_bundle,
                  sns_issuer_pattern=settings.sns_issuer_pattern)
    module.verify(req, credential, ctx)
    return Delivery(app, source, module.parse(req, ctx), req.now)
