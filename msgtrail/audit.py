"""The audit trail: who did what to an app.

One row per act, written in the transaction of the act itself (an act that is undone
leaves no record, and one that is done always has one): its time, its app, how it
came (`via`: the API, the dashboard, the command line, or a file download by its
URL), the first characters of the API key it came with, the remote address, and what
was done (ids and names, never a secret). Read a page at a time, newest first
(`GET /apps/{app_id}/audit`, the dashboard's Audit page); kept
`audit_retention_days`, then purged by retention.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, select

from msgtrail.clock import exact
from msgtrail.db.schema import api_keys, audit_events

# What is recorded; docs/operations.md lists each with its detail.
ACTIONS = (
    "app.created", "key.issued", "key.rotated", "key.revoked", "connector.connected",
    "connector.disconnected", "settings.changed", "export.requested", "file.downloaded",
    "dashboard.signed_in", "dashboard.signed_out",
)


@dataclass(frozen=True)
class Actor:
    """Who acts: how (`via`), from where, with which key. A dashboard session knows
    the hash of the key it signed in with, not the key: its prefix is looked up."""

    via: str  # api | dashboard | cli | download
    remote: str | None = None
    key_prefix: str | None = None
    key_hash: str | None = None


CLI = Actor("cli")
# The first characters of a key, as msgtrail shows and revokes keys by them.
PREFIX = 12


def api_actor(remote: str | None, key: str | None) -> Actor:
    return Actor("api", remote, key[:PREFIX] if key else None)


def record(conn: Connection, app_pk: int, action: str, actor: Actor, **detail: Any) -> None:
    """Record an act of `actor` on the app, in the caller's transaction."""
    assert action in ACTIONS, action
    prefix = actor.key_prefix
    if prefix is None and actor.key_hash is not None:
        prefix = conn.execute(select(api_keys.c.key_prefix).where(
            api_keys.c.key_hash == actor.key_hash)).scalar()
    conn.execute(audit_events.insert().values(
        app_pk=app_pk, at=exact(), action=action, via=actor.via, key_prefix=prefix,
        remote_addr=(actor.remote or None) and actor.remote[:64],
        detail=json.dumps({k: v for k, v in detail.items() if v is not None},
                          separators=(",", ":")) if detail else None))


def page(conn: Connection, app_pk: int, limit: int, before: int | None = None
         ) -> tuple[list[dict[str, Any]], int | None]:
    """The app's records newest first, `limit` of them from before the id `before`;
    and the id to ask for the next page with (None on the last)."""
    query = select(audit_events).where(audit_events.c.app_pk == app_pk)
    if before is not None:
        query = query.where(audit_events.c.id < before)
    rows = conn.execute(query.order_by(audit_events.c.id.desc()).limit(limit + 1)).all()
    items = [{"id": r.id,
              "at": datetime.fromtimestamp(r.at, UTC).isoformat(timespec="milliseconds"),
              "action": r.action, "via": r.via, "key_prefix": r.key_prefix,
              "remote_addr": r.remote_addr, "detail": json.loads(r.detail) if r.detail else {}}
             for r in rows[:limit]]
    return items, (items[-1]["id"] if len(rows) > limit else None)


def purge(conn: Connection, older_than: float) -> int:
    """Delete the records made before `older_than`; how many."""
    return int(conn.execute(audit_events.delete().where(
        audit_events.c.at < older_than)).rowcount)
