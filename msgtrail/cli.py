"""The `msgtrail` command: run the service and workers, manage apps, load demo data."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import sys
import threading
from typing import Any

import click
import uvicorn

from msgtrail import apps as apps_mod
from msgtrail.client._cli import export_command
from msgtrail.db.engine import make_engine, upgrade
from msgtrail.errors import MsgtrailError
from msgtrail.settings import Settings


def _settings(**flags: Any) -> Settings:
    """Settings from MSGTRAIL_* variables, overridden by flags that were given."""
    settings = Settings(**{k: v for k, v in flags.items() if v is not None})
    settings.ensure_data_dir()
    return settings


def _engine(settings: Settings, workers: int = 0):  # type: ignore[no-untyped-def]
    """The database, migrated, with connections for `workers` background workers."""
    engine = make_engine(settings.resolved_database_url(), workers, settings.export_readers)
    upgrade(engine)
    return engine


data_dir_option = click.option("--data-dir", type=click.Path(file_okay=False), default=None,
                               help="Where msgtrail keeps its data [env MSGTRAIL_DATA_DIR; "
                                    "default ./msgtrail-data].")
database_option = click.option("--database-url", default=None,
                               help="SQLAlchemy URL [env MSGTRAIL_DATABASE_URL; default "
                                    "SQLite in the data dir].")


@click.group()
@click.option("--log-level", default="info", show_default=True)
def main(log_level: str) -> None:
    """msgtrail: per-recipient message activity and its exports."""
    logging.basicConfig(level=log_level.upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # a line per request is noise


def _serve(settings: Settings, workers: int | None, processes: int = 1) -> None:
    from msgtrail.app import create_app

    if workers is not None:
        settings.workers = workers
    engine = _engine(settings, settings.workers)
    if processes > 1:
        # Each process builds its own app from the environment; pass the settings on.
        for name, value in settings.model_dump().items():
            if value is not None:
                os.environ[f"MSGTRAIL_{name.upper()}"] = str(value)
        uvicorn.run("msgtrail.app:app_from_env", factory=True, workers=processes,
                    host=settings.host, port=settings.port, log_level="warning",
                    access_log=False)
        return
    app = create_app(settings, engine)
    uvicorn.run(app, host=settings.host, port=settings.port, log_level="warning",
                access_log=False)


@main.command()
@click.option("--host", default=None, help="Address to listen on [default 127.0.0.1].")
@click.option("--port", type=int, default=None, help="Port [default 8000].")
@click.option("--workers", type=int, default=None,
              help="In-process background workers [default 1; 0 for an API-only process].")
@click.option("--processes", type=int, default=1, show_default=True,
              help="API processes sharing the port (each with its own workers).")
@click.option("--public-url", default=None, help="Base of URLs handed to clients.")
@data_dir_option
@database_option
def serve(host, port, workers, processes, public_url, data_dir, database_url) -> None:  # type: ignore[no-untyped-def]
    """Run the HTTP API (and background workers)."""
    settings = _settings(host=host, port=port, public_url=public_url, data_dir=data_dir,
                         database_url=database_url)
    click.echo(f"msgtrail listening on http://{settings.host}:{settings.port}", err=True)
    _serve(settings, workers, processes)


@main.command()
@click.option("--concurrency", type=int, default=1, show_default=True,
              help="Worker threads in this process.")
@data_dir_option
@database_option
def worker(concurrency, data_dir, database_url) -> None:  # type: ignore[no-untyped-def]
    """Run background workers without the API."""
    from msgtrail.storage import open_store
    from msgtrail.worker import Worker

    settings = _settings(data_dir=data_dir, database_url=database_url)
    engine = _engine(settings, concurrency)
    store = open_store(settings.resolved_storage_url())
    pool = [Worker(settings, engine, store, name=f"worker-{i}") for i in range(concurrency)]
    for w in pool:
        w.start()
    click.echo(f"msgtrail worker running ({concurrency} threads)", err=True)
    stopping = threading.Event()
    # SIGTERM stops gracefully: running jobs are handed back to the queue at once.
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    with contextlib.suppress(KeyboardInterrupt):
        stopping.wait()
    for w in pool:
        w.stop()


main.add_command(export_command)


@main.group()
def db() -> None:
    """Database maintenance."""


@db.command("upgrade")
@data_dir_option
@database_option
def db_upgrade(data_dir, database_url) -> None:  # type: ignore[no-untyped-def]
    """Apply migrations to the database."""
    _engine(_settings(data_dir=data_dir, database_url=database_url))
    click.echo("database is up to date")


@main.group()
def apps() -> None:
    """Apps and their API keys."""


def _run(fn, data_dir, database_url):  # type: ignore[no-untyped-def]
    engine = _engine(_settings(data_dir=data_dir, database_url=database_url))
    try:
        with engine.begin() as conn:
            return fn(conn)
    except MsgtrailError as exc:
        raise click.ClickException("; ".join(exc.messages)) from None


@apps.command("create")
@click.option("--name", required=True, help="A name for the app.")
@click.option("--account", default="default", show_default=True,
              help="Account the app belongs to (one concurrent export per account).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@data_dir_option
@database_option
def apps_create(name, account, as_json, data_dir, database_url) -> None:  # type: ignore[no-untyped-def]
    """Create an app; prints its app_id and API key (the key is shown only once)."""
    app, key = _run(lambda c: apps_mod.create_app(c, name, account), data_dir, database_url)
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
    rows = _run(apps_mod.list_apps, data_dir, database_url)
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
    key = _run(lambda c: apps_mod.rotate_key(c, app_id), data_dir, database_url)
    click.echo(json.dumps({"app_id": app_id, "api_key": key}) if as_json else f"api_key: {key}")


@apps.command("revoke-key")
@click.argument("app_id")
@click.option("--key-prefix", default=None, help="Revoke only the key starting with this.")
@data_dir_option
@database_option
def apps_revoke(app_id, key_prefix, data_dir, database_url) -> None:  # type: ignore[no-untyped-def]
    """Revoke the app's API keys (all, or one by its first characters)."""
    n = _run(lambda c: apps_mod.revoke_keys(c, app_id, key_prefix), data_dir, database_url)
    click.echo(f"revoked {n} key(s)")


@apps.command("update")
@click.argument("app_id")
@click.option("--history", type=click.Choice(["on", "off"]), required=True,
              help='"Send History via API": allow POST /notifications/{id}/history.')
@data_dir_option
@database_option
def apps_update(app_id, history, data_dir, database_url) -> None:  # type: ignore[no-untyped-def]
    """Change an app's settings."""
    app = _run(lambda c: apps_mod.set_history(c, app_id, history == "on"), data_dir,
               database_url)
    click.echo(f"{app.app_id}: history={'on' if app.history_enabled else 'off'}")


@main.command()
@click.option("--recipients", type=int, default=100_000, show_default=True,
              help="Recipients across the demo messages.")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=int, default=8000, show_default=True)
@click.option("--workers", type=int, default=None,
              help="In-process background workers [default 1; 0 for an API-only process].")
@data_dir_option
def demo(recipients, host, port, workers, data_dir) -> None:  # type: ignore[no-untyped-def]
    """Load demo data (an app, its key, push/email/SMS messages) and serve it."""
    from msgtrail.demo import create_demo

    settings = _settings(host=host, port=port, data_dir=data_dir)
    engine = _engine(settings)  # loads the demo data; `serve` makes its own
    click.echo(f"Creating demo data for {recipients:,} recipients…", err=True)
    info = create_demo(engine, recipients)
    base = settings.resolved_public_url()
    app_id, key = info["app_id"], info["api_key"]
    first = info["messages"][0][1]  # type: ignore[index]
    lines = [f"app_id:  {app_id}", f"api_key: {key}", "", "messages:"]
    lines += [f"  {ch:<5} {mid}  ({n:,} recipients)" for ch, mid, n in info["messages"]]  # type: ignore[attr-defined]
    lines += [
        "", "Try:",
        f"  curl -H 'Authorization: Key {key}' '{base}/notifications?app_id={app_id}'",
        f"  curl -H 'Authorization: Key {key}' '{base}/notifications/{first}?app_id={app_id}'",
        "", "Export a message's audience activity (the URL answers 404 until the file is ready):",
        f"  curl -X POST -H 'Authorization: Key {key}' "
        f"'{base}/notifications/{first}/export_events?app_id={app_id}'",
        f"  MSGTRAIL_API_KEY={key} msgtrail export {first} --app-id {app_id} --base-url {base}",
        "", "Or with OneSignal's Python SDK (pip install onesignal-python-api):",
        "  python -c \"import onesignal; from onesignal.api import default_api; "
        f"c = onesignal.Configuration(host='{base}', rest_api_key='{key}'); "
        "api = default_api.DefaultApi(onesignal.ApiClient(c)); "
        f"print(api.get_notification('{app_id}', '{first}'))\"",
        "", f"API docs: {base}/docs", "",
    ]
    click.echo("\n".join(lines))
    sys.stdout.flush()
    _serve(settings, workers)
