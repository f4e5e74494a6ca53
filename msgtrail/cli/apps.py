"""Apps: their keys, settings and provider connectors (`apps ...`), and the webhook
events that could not be attributed (`webhooks rejected`)."""

from __future__ import annotations

import json

import click

from msgtrail.cli.common import (
    data_dir_option,
    database_option,
    engine_and_app,
    in_transaction,
    load_settings,
)
from msgtrail.errors import MsgtrailError
from msgtrail.ingest import SOURCE_NAMES


@click.group()
def apps() -> None:
    """Apps and their API keys."""


@apps.command("create")
@click.option("--name", required=True, help="A name for the app.")
@click.option("--account", default="default", show_default=True,
              help="Account the app belongs to (one concurrent export per account).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@data_dir_option
@database_option
def apps_create(name, account, as_json, data_dir, database_url) -> None:  # type: ignore[no-untyped-def]
    """Create an app; prints its app_id and API key (the key is shown only once)."""
    from msgtrail import apps as apps_mod

    app, key = in_transaction(lambda c: apps_mod.create_app(c, name, account), data_dir,
                              database_url, create=True)
    if as_json:
        click.echo(json.dumps({"app_id": app.app_id, "api_key": key, "account": account}))
    else:
        click.echo(f"app_id:  {app.app_id}\napi_key: {key}\naccount: {account}\n"
                   "Keep the key now: only its hash is stored.")


@apps.command("list")
@click.option("--json", "as_json", is_flag=True)
@data_dir_option
@database_option
def apps_list(as_json, data_dir, database_url) -> None:  # type: ignore[no-untyped-def]
    """List apps."""
    from msgtrail import apps as apps_mod

    rows = in_transaction(apps_mod.list_apps, data_dir, database_url)
    items = [{"app_id": a.app_id, "name": a.name, "account": a.account,
              "history": a.history_enabled, "active_keys": n} for a, n in rows]
    if as_json:
        click.echo(json.dumps(items))
        return
    for item in items:
        click.echo(f"{item['app_id']}  {item['account']:<16} keys={item['active_keys']} "
                   f"history={'on' if item['history'] else 'off'}  {item['name']}")


@apps.command("rotate-key")
@click.argument("app_id")
@click.option("--json", "as_json", is_flag=True)
@data_dir_option
@database_option
def apps_rotate(app_id, as_json, data_dir, database_url) -> None:  # type: ignore[no-untyped-def]
    """Issue a new API key and revoke the app's previous ones."""
    from msgtrail import apps as apps_mod

    key = in_transaction(lambda c: apps_mod.rotate_key(c, app_id), data_dir, database_url)
    click.echo(json.dumps({"app_id": app_id, "api_key": key}) if as_json else f"api_key: {key}")


@apps.command("revoke-key")
@click.argument("app_id")
@click.option("--key-prefix", default=None, help="Revoke only the key starting with this.")
@data_dir_option
@database_option
def apps_revoke(app_id, key_prefix, data_dir, database_url) -> None:  # type: ignore[no-untyped-def]
    """Revoke the app's API keys (all, or one by its first characters)."""
    from msgtrail import apps as apps_mod

    n = in_transaction(lambda c: apps_mod.revoke_keys(c, app_id, key_prefix), data_dir,
                       database_url)
    click.echo(f"revoked {n} key(s)")


@apps.command("update")
@click.argument("app_id")
@click.option("--history", type=click.Choice(["on", "off"]), default=None,
              help='"Send History via API": allow POST /notifications/{id}/history.')
@click.option("--webhook-url", default=None,
              help="Where msgtrail POSTs when an export of the app is ready, failed or "
                   "expired (http or https); '' removes it.")
@click.option("--rotate-webhook-secret", is_flag=True,
              help="Issue a new signing secret (the old one stops signing at once).")
@click.option("--json", "as_json", is_flag=True,
              help='Print {"app_id": ..., "webhook_url": ..., "webhook_secret": ...}.')
@data_dir_option
@database_option
def apps_update(app_id, history, webhook_url, rotate_webhook_secret, as_json, data_dir,  # type: ignore[no-untyped-def]
                database_url) -> None:
    """Change an app's settings. A webhook's signing secret is printed once, when it
    is issued (with the first URL, or --rotate-webhook-secret)."""
    if history is None and webhook_url is None and not rotate_webhook_secret:
        raise click.UsageError("nothing to change: give --history, --webhook-url or "
                               "--rotate-webhook-secret")
    settings = load_settings(data_dir=data_dir, database_url=database_url)
    if webhook_url:
        try:
            from msgtrail.notify import export_webhooks

            export_webhooks.check_url(webhook_url, settings.webhook_allow_private)
        except MsgtrailError as exc:
            raise click.BadParameter("; ".join(exc.messages),
                                     param_hint="--webhook-url") from None

    from msgtrail import apps as apps_mod
    from msgtrail.vault import Vault

    def change(conn):  # type: ignore[no-untyped-def]
        if history is not None:
            apps_mod.set_history(conn, app_id, history == "on")
        url, secret = apps_mod.set_webhook(conn, Vault(settings), app_id, webhook_url,
                                           rotate_webhook_secret)
        return apps_mod.get_app(conn, app_id), url, secret

    app, url, secret = in_transaction(change, data_dir, database_url)
    if as_json:
        click.echo(json.dumps({"app_id": app.app_id, "webhook_url": url,
                               "webhook_secret": secret}))
        return
    click.echo(f"{app.app_id}: history={'on' if app.history_enabled else 'off'} "
               f"webhook={url or 'none'}")
    if secret:
        click.echo(f"webhook secret: {secret}\nKeep it now: it is not shown again. Check "
                   "each request's Msgtrail-Signature with msgtrail.client.verify_webhook.")


@apps.command("connect")
@click.argument("app_id")
@click.argument("source", type=click.Choice(SOURCE_NAMES))
@click.option("--public-key", default=None, help="sendgrid: the Signed Event Webhook "
              "verification key (base64 DER).")
@click.option("--auth-token", default=None, help="twilio: the account's Auth Token.")
@click.option("--signing-key", default=None, help="mailgun: the HTTP webhook signing key.")
@click.option("--password", default=None, help="postmark: the basic auth password "
              "[default: generated].")
@click.option("--topic-arn", "topic_arns", multiple=True,
              help="ses: an SNS topic ARN whose notifications are accepted (repeatable).")
@click.option("--public-url", default=None, help="Base of the URL providers call "
              "[env MSGTRAIL_PUBLIC_URL].")
@click.option("--json", "as_json", is_flag=True, help='Print {"source": ..., "url": ...}.')
@data_dir_option
@database_option
def apps_connect(app_id, source, public_key, auth_token, signing_key, password, topic_arns,  # type: ignore[no-untyped-def]
                 public_url, as_json, data_dir, database_url) -> None:
    """Take a provider's webhooks for an app; prints the URL to give the provider.

    The credential is stored encrypted and never shown again."""
    settings = load_settings(data_dir=data_dir, database_url=database_url, public_url=public_url)
    from msgtrail.ingest import connections
    from msgtrail.vault import Vault

    vault = Vault(settings)
    _, credential = in_transaction(lambda c: connections.connect(
        c, vault, app_id, source, public_key=public_key, auth_token=auth_token,
        signing_key=signing_key, password=password, topic_arns=topic_arns),
        data_dir, database_url)
    url = connections.webhook_url(settings.resolved_public_url(), source, app_id, credential)
    if as_json:
        click.echo(json.dumps({"source": source, "url": url}))
    else:
        click.echo(f"{url}\n{connections.HINTS[source]}")
    if _local(settings.resolved_public_url()):
        click.echo(f"Warning: {settings.resolved_public_url()} is not reachable from the "
                   "internet, so the provider cannot call this URL. Give --public-url (or set "
                   "MSGTRAIL_PUBLIC_URL) to the address it can reach, then run this again.",
                   err=True)


def _local(url: str) -> bool:
    """Whether a URL names this machine or a private network, which no provider reaches."""
    import ipaddress
    from urllib.parse import urlsplit

    host = urlsplit(url).hostname or ""
    if host == "localhost" or host.endswith((".localhost", ".local", ".internal")):
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    return not address.is_global


@apps.command("disconnect")
@click.argument("app_id")
@click.argument("source", type=click.Choice(SOURCE_NAMES))
@data_dir_option
@database_option
def apps_disconnect(app_id, source, data_dir, database_url) -> None:  # type: ignore[no-untyped-def]
    """Stop taking a provider's webhooks for an app, and forget its credential."""
    from msgtrail.ingest import connections

    removed = in_transaction(lambda c: connections.disconnect(c, app_id, source), data_dir,
                             database_url)
    click.echo(f"{source}: {'disconnected' if removed else 'was not connected'}")


@click.group()
def webhooks() -> None:
    """Provider webhooks."""


@webhooks.command("rejected")
@click.argument("app_id")
@click.option("--source", type=click.Choice(SOURCE_NAMES), default=None)
@click.option("--limit", type=click.IntRange(1, 1000), default=50, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print the page as JSON.")
@data_dir_option
@database_option
def webhooks_rejected(app_id, source, limit, as_json, data_dir, database_url) -> None:  # type: ignore[no-untyped-def]
    """Webhook events that could not be attributed to a message, newest first."""
    engine, app = engine_and_app(app_id, data_dir, database_url)
    from msgtrail.ingest import intake

    page = intake.rejections(engine, app.pk, source, limit, 0)
    if as_json:
        click.echo(json.dumps(page))
        return
    click.echo(f"{page['total_count']} rejected event(s)")
    for item in page["rejections"]:
        click.echo(f"{item['id']:>6}  {item['source']:<9} {item['message_id'] or '-':<36}  "
                   f"{item['reason']}")


