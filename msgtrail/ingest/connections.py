"""Which webhook sources an app takes, with their credentials sealed at rest."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from sqlalchemy import Connection, select

from msgtrail import audit
from msgtrail.apps import App, get_app
from msgtrail.audit import Actor
from msgtrail.clock import now
from msgtrail.db.schema import connections
from msgtrail.errors import BadRequest, NotFound
from msgtrail.ingest.connectors import SOURCES
from msgtrail.vault import Vault


def _source(name: str) -> str:
    if name not in SOURCES:
        raise BadRequest(f"source: {name!r} is not one of {', '.join(SOURCES)}")
    return name


def connect(conn: Connection, vault: Vault, app_id: str, source: str,
            actor: Actor = audit.CLI, **options: Any) -> tuple[App, dict[str, Any]]:
    """Enable (or re-key) a source for an app; returns the credential as stored, which
    the caller shows once (Postmark's generated password lives only there)."""
    app = get_app(conn, app_id)
    credential = SOURCES[_source(source)].credential(**options)
    replaced = conn.execute(connections.delete().where(connections.c.app_pk == app.pk,
                                                       connections.c.source == source)).rowcount
    audit.record(conn, app.pk, "connector.connected", actor, source=source,
                 replaced=bool(replaced))
    conn.execute(connections.insert().values(app_pk=app.pk, source=source,
                                             secret=vault.seal(credential), created_at=now()))
    return app, credential


def disconnect(conn: Connection, app_id: str, source: str, actor: Actor = audit.CLI) -> bool:
    app = get_app(conn, app_id)
    removed = bool(conn.execute(connections.delete().where(
        connections.c.app_pk == app.pk, connections.c.source == _source(source))).rowcount)
    if removed:
        audit.record(conn, app.pk, "connector.disconnected", actor, source=source)
    return removed


def credential(conn: Connection, vault: Vault, app: App, source: str) -> dict[str, Any]:
    """The source's credential for the app, or NotFound if it is not connected."""
    sealed = conn.execute(select(connections.c.secret).where(
        connections.c.app_pk == app.pk, connections.c.source == source)).scalar()
    if sealed is None:
        raise NotFound(f"{source} is not connected to app {app.app_id} "
                       f"(msgtrail apps connect {app.app_id} {source})")
    return vault.open(sealed)


def sources(conn: Connection, app: App) -> list[str]:
    return list(conn.execute(select(connections.c.source).where(
        connections.c.app_pk == app.pk).order_by(connections.c.source)).scalars())


def webhook_url(public_url: str, source: str, app_id: str, credential: dict[str, Any]) -> str:
    """The URL to give the provider's console for the app."""
    url = f"{public_url}/webhooks/{source}/{app_id}"
    if source == "postmark":
        # Postmark authenticates with basic auth written into the URL.
        scheme, _, rest = url.partition("://")
        url = f"{scheme}://msgtrail:{quote(credential['password'], safe='')}@{rest}"
    return url


# Where each provider's console takes the URL, and what each send must carry.
HINTS = {
    "onesignal": "In OneSignal: Data > Event Streams, method POST, this URL, header "
                 "'Authorization: Key <this app's msgtrail API key>', and the body template "
                 "in docs/connectors.md (or OneSignal's own example body).",
    "sendgrid": "In SendGrid: Settings > Mail Settings > Event Webhook, this URL, "
                "signature verification on; put custom_args msgtrail_message_id and "
                "msgtrail_subscription_id on each send.",
    "ses": "In AWS: subscribe this URL (HTTPS) to the SNS topic; msgtrail confirms the "
           "subscription itself. Tag each send msgtrail_message_id / msgtrail_subscription_id.",
    "twilio": "Use this URL as StatusCallback, with ?msgtrail_message_id=...&"
              "msgtrail_subscription_id=... appended; MSGTRAIL_PUBLIC_URL must be the "
              "address Twilio calls.",
    "postmark": "In Postmark: Servers > Webhooks, this URL (the password is shown only "
                "now); put Metadata msgtrail_message_id / msgtrail_subscription_id on sends.",
    "mailgun": "In Mailgun: Sending > Webhooks, this URL for each event; send with "
               "v:msgtrail_message_id and v:msgtrail_subscription_id.",
}
