"""Running msgtrail: the API with its workers (`serve`), workers alone (`worker`), the
database's migrations (`db upgrade`) and the demo (`demo`)."""

from __future__ import annotations

import os
import signal
import sys
from typing import TYPE_CHECKING

import click

from msgtrail.cli.common import (
    data_dir_option,
    data_process,
    database_option,
    fail,
    load_settings,
    migrated_engine,
    process_metrics,
)
from msgtrail.errors import MsgtrailError

if TYPE_CHECKING:
    from msgtrail.settings import Settings


def _exit_quietly(*_: object) -> None:
    raise SystemExit(0)


def _serve(settings: Settings, workers: int | None, processes: int = 1) -> None:
    import uvicorn

    data_process()
    process_metrics(settings)
    from msgtrail.web.app import create_app, served

    if workers is not None:
        settings.workers = workers
    engine = migrated_engine(settings, settings.workers)
    from msgtrail.operate import replica

    try:
        replicating = replica.start(settings)  # one Litestream, in this (the parent) process
    except MsgtrailError as exc:
        raise fail(exc) from None
    # uvicorn raises the signals it caught again once it has stopped, under the
    # handlers it found: these end the process through the `finally` below (Litestream
    # told to stop, exit status 0) instead of the default's death by SIGTERM.
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, _exit_quietly)
    try:
        if processes > 1:
            # Each process builds its own app from the environment; pass the settings on.
            for name, value in settings.model_dump().items():
                if value is not None:
                    os.environ[f"MSGTRAIL_{name.upper()}"] = str(value)
            uvicorn.run("msgtrail.web.app:app_from_env", factory=True, workers=processes,
                        host=settings.host, port=settings.port, log_level="warning",
                        log_config=None, access_log=False)
            return
        app = served(create_app(settings, engine))
        uvicorn.run(app, host=settings.host, port=settings.port, log_level="warning",
                    log_config=None, access_log=False)
    finally:
        replica.stop(replicating)  # after the last write: it ships the rest of the WAL


@click.command()
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
    settings = load_settings(True, host=host, port=port, public_url=public_url, data_dir=data_dir,
                         database_url=database_url)
    click.echo(f"msgtrail listening on http://{settings.host}:{settings.port}", err=True)
    _serve(settings, workers, processes)


@click.command()
@click.option("--concurrency", type=int, default=1, show_default=True,
              help="Worker threads in this process.")
@click.option("--probe-port", type=int, default=None, envvar="MSGTRAIL_PROBE_PORT",
              help="Answer /livez, /readyz and /metrics on this port (at MSGTRAIL_HOST) "
                   "[env MSGTRAIL_PROBE_PORT; default: none].")
@data_dir_option
@database_option
def worker(concurrency, probe_port, data_dir, database_url) -> None:  # type: ignore[no-untyped-def]
    """Run background workers without the API."""
    data_process()

    settings = load_settings(True, data_dir=data_dir, database_url=database_url)
    process_metrics(settings)
    from msgtrail.files import open_store
    from msgtrail.runtime.worker import Worker, run_until_stopped

    engine = migrated_engine(settings, concurrency)
    from msgtrail.runtime import metrics

    metrics.watch_pool(engine)
    store = open_store(settings.resolved_storage_url())
    pool = [Worker(settings, engine, store, name=f"worker-{i}") for i in range(concurrency)]
    if probe_port is not None:
        from msgtrail.runtime import readiness

        readiness.serve_probes(
            probe_port, settings.host,
            lambda: readiness.problems(engine, store, [w for w in map(Worker.stalled, pool)
                                                       if w]),
            lambda: metrics.exposition(engine, settings.activity_retention_days))
    click.echo(f"msgtrail worker running ({concurrency} threads)", err=True)
    run_until_stopped(pool, settings.shutdown_grace_seconds)


@click.group()
def db() -> None:
    """Database maintenance."""


@db.command("upgrade")
@data_dir_option
@database_option
def db_upgrade(data_dir, database_url) -> None:  # type: ignore[no-untyped-def]
    """Apply migrations to the database."""
    migrated_engine(load_settings(True, data_dir=data_dir, database_url=database_url))
    click.echo("database is up to date")


@click.command()
@click.option("--recipients", type=int, default=100_000, show_default=True,
              help="Recipients across the demo messages.")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=int, default=8000, show_default=True)
@click.option("--workers", type=int, default=None,
              help="In-process background workers [default 1; 0 for an API-only process].")
@data_dir_option
def demo(recipients, host, port, workers, data_dir) -> None:  # type: ignore[no-untyped-def]
    """Load demo data (an app, its key, push/email/SMS messages) and serve it."""
    from msgtrail.demo import create_demo, instructions, invoked_as

    data_process()

    settings = load_settings(True, host=host, port=port, data_dir=data_dir)
    engine = migrated_engine(settings)  # loads the demo data; `serve` makes its own
    click.echo(f"Creating demo data for {recipients:,} recipients…", err=True)
    info = create_demo(engine, recipients)
    base = settings.resolved_public_url()
    click.echo(instructions(info, base, invoked_as()))
    sys.stdout.flush()
    _serve(settings, workers)
