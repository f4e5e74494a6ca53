"""Accounts, apps and their API keys.

Keys are 256-bit random tokens shown once; only their SHA-256 is stored, and the
lookup compares digests in constant time.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from sqlalchemy import Connection, delete, select

from msgtrail import audit
from msgtrail.audit import Actor
from msgtrail.clock import now
from msgtrail.db.schema import accounts, api_keys, apps, dashboard_sessions
from msgtrail.errors import NotFound

if TYPE_CHECKING:
    from msgtrail.vault import Vault  # (it brings cryptography: only set_webhook needs it)

KEY_PREFIX = "mtk_"


@dataclass(frozen=True)
class App:
    pk: int
    app_id: str
    name: str
    account_id: int
    account: str
    history_enabled: bool


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def _new_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def _account_pk(conn: Connection, name: str) -> int:
    pk = conn.execute(select(accounts.c.id).where(accounts.c.name == name)).scalar()
    if pk is None:
        pk = conn.execute(accounts.insert().values(name=name, created_at=now())
                          ).inserted_primary_key[0]  # type: ignore[index]
    return int(pk)


def create_app(conn: Connection, name: str, account: str = "default",
               actor: Actor = audit.CLI) -> tuple[App, str]:
    """A new app with one API key; returns the app and the key in clear (shown once)."""
    account_pk = _account_pk(conn, account)
    app_id = str(uuid.uuid4())
    pk = conn.execute(
        apps.insert().values(app_id=app_id, account_id=account_pk, name=name, created_at=now())
    ).inserted_primary_key[0]  # type: ignore[index]
    key = _issue_key(conn, int(pk))
    audit.record(conn, int(pk), "app.created", actor, name=name, account=account,
                 new_key_prefix=key[:audit.PREFIX])
    return App(int(pk), app_id, name, account_pk, account, True), key


def _issue_key(conn: Connection, app_pk: int) -> str:
    key = _new_key()
    conn.execute(api_keys.insert().values(
        app_pk=app_pk, key_hash=hash_key(key), key_prefix=key[:audit.PREFIX], created_at=now()))
    return key


def _app_query():  # type: ignore[no-untyped-def]
    return select(apps.c.id, apps.c.app_id, apps.c.name, apps.c.account_id, accounts.c.name,
                  apps.c.history_enabled).join(accounts, accounts.c.id == apps.c.account_id)


def _row_to_app(row) -> App:  # type: ignore[no-untyped-def]
    return App(row[0], row[1], row[2], row[3], row[4], bool(row[5]))


def list_apps(conn: Connection) -> list[tuple[App, int]]:
    """Every app with its number of active keys."""
    result = []
    for row in conn.execute(_app_query().order_by(apps.c.id)):
        app = _row_to_app(row)
        active = conn.execute(select(api_keys.c.id).where(
            api_keys.c.app_pk == app.pk, api_keys.c.revoked_at.is_(None))).all()
        result.append((app, len(active)))
    return result


def get_app(conn: Connection, app_id: str) -> App:
    row = conn.execute(_app_query().where(apps.c.app_id == app_id)).first()
    if row is None:
        raise NotFound(f"No app with id {app_id}")
    return _row_to_app(row)


@dataclass(frozen=True)
class Key:
    """An API key as it can be shown: its first characters, never the rest."""

    prefix: str
    created_at: int
    revoked_at: int | None


def keys(conn: Connection, app: App) -> list[Key]:
    """The app's keys, active ones first, newest first."""
    rows = conn.execute(select(api_keys.c.key_prefix, api_keys.c.created_at,
                               api_keys.c.revoked_at).where(api_keys.c.app_pk == app.pk)
                        .order_by(api_keys.c.revoked_at.is_not(None), api_keys.c.id.desc()))
    return [Key(r[0], int(r[1]), None if r[2] is None else int(r[2])) for r in rows]


def issue_key(conn: Connection, app_id: str, actor: Actor = audit.CLI) -> str:
    """Issue one more key for the app, its others kept (to change keys without a gap)."""
    app = get_app(conn, app_id)
    key = _issue_key(conn, app.pk)
    audit.record(conn, app.pk, "key.issued", actor, new_key_prefix=key[:audit.PREFIX])
    return key


def webhook_url(conn: Connection, app: App) -> str | None:
    """The app's completion webhook URL (its secret is shown only when issued)."""
    found = conn.execute(select(apps.c.webhook_url).where(apps.c.id == app.pk)).scalar()
    return str(found) if found else None


def rotate_key(conn: Connection, app_id: str, actor: Actor = audit.CLI) -> str:
    """Issue a new key for the app and revoke every key it had before."""
    app = get_app(conn, app_id)
    revoked = _revoke(conn, app, None)
    key = _issue_key(conn, app.pk)
    audit.record(conn, app.pk, "key.rotated", actor, new_key_prefix=key[:audit.PREFIX],
                 revoked=revoked)
    return key


def revoke_keys(conn: Connection, app_id: str, key_prefix: str | None = None,
                actor: Actor = audit.CLI) -> int:
    """Revoke the app's keys (or the one starting with key_prefix), and end the
    dashboard sessions signed in with them; returns how many keys."""
    app = get_app(conn, app_id)
    revoked = _revoke(conn, app, key_prefix)
    audit.record(conn, app.pk, "key.revoked", actor,
                 revoked_key_prefix=key_prefix[:audit.PREFIX] if key_prefix else "all",
                 revoked=revoked)
    return revoked


def _revoke(conn: Connection, app: App, key_prefix: str | None) -> int:
    query = api_keys.update().where(api_keys.c.app_pk == app.pk, api_keys.c.revoked_at.is_(None))
    if key_prefix:
        query = query.where(api_keys.c.key_prefix == key_prefix[:audit.PREFIX])
    revoked = conn.execute(query.values(revoked_at=now()).returning(api_keys.c.key_hash)
                           ).scalars().all()
    if revoked:
        conn.execute(delete(dashboard_sessions).where(
            dashboard_sessions.c.key_hash.in_(revoked)))
    return len(revoked)


def set_history(conn: Connection, app_id: str, enabled: bool, actor: Actor = audit.CLI) -> App:
    app = get_app(conn, app_id)
    conn.execute(apps.update().where(apps.c.id == app.pk).values(history_enabled=enabled))
    audit.record(conn, app.pk, "settings.changed", actor, history="on" if enabled else "off")
    return get_app(conn, app_id)


def set_webhook(conn: Connection, vault: Vault, app_id: str, url: str | None,
                rotate: bool, actor: Actor = audit.CLI) -> tuple[str | None, str | None]:
    """Set (a URL), remove ('') or keep (None) the app's completion webhook URL, and
    issue a signing secret when there is a URL and none yet, or `rotate`. Returns the
    URL and the newly issued secret (shown once; only sealed it is kept), if any. The
    URL must have passed `export_webhooks.check_url`."""
    app = get_app(conn, app_id)
    current, sealed = conn.execute(select(apps.c.webhook_url, apps.c.webhook_secret)
                                   .where(apps.c.id == app.pk)).one()
    if url is not None:
        current = url or None
    secret = None
    if current and (rotate or not sealed):
        secret = "whsec_" + secrets.token_urlsafe(32)
        sealed = vault.seal({"secret": secret})
    if not current:
        sealed = None
    conn.execute(apps.update().where(apps.c.id == app.pk).values(
        webhook_url=current, webhook_secret=sealed))
    if url is not None or secret:
        audit.record(conn, app.pk, "settings.changed", actor,
                     webhook_url=None if url is None else _without_credentials(url) or "removed",
                     webhook_secret="issued" if secret else None)
    return current, secret


def _without_credentials(url: str) -> str:
    """A URL as the audit trail keeps it: without user and password."""
    parts = urlsplit(url)
    return parts._replace(netloc=parts.hostname or "" if parts.port is None
                          else f"{parts.hostname}:{parts.port}").geturl() if url else url


def authenticate(conn: Connection, key: str) -> App | None:
    """The app an active key belongs to, or None."""
    return by_key_hash(conn, hash_key(key))


def by_key_hash(conn: Connection, digest: str) -> App | None:
    """The app whose active key has this SHA-256, or None."""
    row = conn.execute(
        _app_query().add_columns(api_keys.c.key_hash)
        .join(api_keys, api_keys.c.app_pk == apps.c.id)
        .where(api_keys.c.key_hash == digest, api_keys.c.revoked_at.is_(None))
    ).first()
    # The index lookup already matched; compare again in constant time so that the
    # answer never depends on how much of a guessed digest was right.
    if row is None or not hmac.compare_digest(row[6], digest):
        return None
    return _row_to_app(row)


# Dashboard sign-ins: a row per signed-in session, found by its token's SHA-256 (the
# token itself lives only in the browser's cookie). Revoking a key above ends its rows.

def open_session(conn: Connection, token_hash: str, app_pk: int, key_hash: str, csrf: str,
                 at: float, ttl: float) -> None:
    """Store a signed-in session; sessions past their expiry are cleared on the way."""
    conn.execute(delete(dashboard_sessions).where(dashboard_sessions.c.expires_at <= at))
    conn.execute(dashboard_sessions.insert().values(
        token_hash=token_hash, app_pk=app_pk, key_hash=key_hash, csrf=csrf, created_at=at,
        expires_at=at + ttl))


def session(conn: Connection, token_hash: str) -> tuple[str, int, str, str] | None:
    """The live session of a token's hash: (token hash, app pk, key hash, CSRF token)."""
    row = conn.execute(select(dashboard_sessions.c.token_hash, dashboard_sessions.c.app_pk,
                              dashboard_sessions.c.key_hash, dashboard_sessions.c.csrf)
                       .where(dashboard_sessions.c.token_hash == token_hash,
                              dashboard_sessions.c.expires_at > now())).first()
    return None if row is None else (row[0], row[1], row[2], row[3])


def close_session(conn: Connection, token_hash: str) -> None:
    conn.execute(delete(dashboard_sessions).where(
        dashboard_sessions.c.token_hash == token_hash))
