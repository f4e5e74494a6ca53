"""What the commands share: their --data-dir and --database-url options, settings
and a migrated database from them, the set-up of a process that moves activity, and
errors as click prints them."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from msgtrail.errors import MsgtrailError

if TYPE_CHECKING:
    from msgtrail.settings import Settings


data_dir_option = click.option("--data-dir", type=click.Path(file_okay=False), default=None,
                               help="Where msgtrail keeps its data [env MSGTRAIL_DATA_DIR; "
                                    "default ./msgtrail-data].")
database_option = click.option("--database-url", default=None,
                               help="SQLAlchemy URL [env MSGTRAIL_DATABASE_URL; default "
                                    "SQLite in the data dir].")


def load_settings(create: bool = False, **flags: Any) -> Settings:
    """Settings from MSGTRAIL_* variables, overridden by flags that were given. A
    command that does not `create` one needs an existing embedded database (a typo in
    --data-dir must not answer with an empty list)."""
    from msgtrail.settings import Settings

    settings = Settings(**{k: v for k, v in flags.items() if v is not None})
    if create:
        settings.ensure_data_dir()
    elif settings.database_url is None and not (settings.data_dir / "msgtrail.db").is_file():
        raise click.ClickException(
            f"no msgtrail data in {settings.data_dir}: give --data-dir (or "
            "MSGTRAIL_DATA_DIR) of an existing one; `msgtrail serve`, `msgtrail demo` "
            "and `msgtrail apps create` make a new one")
    return settings


def migrated_engine(settings: Settings, workers: int = 0):  # type: ignore[no-untyped-def]
    """The database, migrated, with connections for `workers` background workers."""
    from msgtrail.db.engine import make_engine, upgrade

    engine = make_engine(settings.resolved_database_url(), workers)
    upgrade(engine)
    return engine


# The commands that move activity (serve, worker, import, demo) import the data stack
# and tune the allocators inside; the others (apps, db, webhooks) start without them.
def data_process() -> None:
    from msgtrail.runtime import allocators

    allocators.bound()


def process_metrics(settings: Settings) -> None:
    """This process's metrics in the machine's metrics directory (before anything
    imports prometheus_client), its memory watched, its live gauges dropped at exit."""
    import atexit

    from msgtrail.runtime import metrics_dir

    metrics_dir.prepare(settings.resolved_metrics_dir())
    from msgtrail.runtime import metrics

    metrics.watch_memory()
    atexit.register(metrics.process_exit)


def engine_and_app(app_id: str, data_dir, database_url):  # type: ignore[no-untyped-def]
    """One engine, and the app it holds under app_id (a clean error if none)."""
    from msgtrail import apps as apps_mod

    engine = migrated_engine(load_settings(data_dir=data_dir, database_url=database_url))
    try:
        with engine.connect() as conn:
            return engine, apps_mod.get_app(conn, app_id)
    except MsgtrailError as exc:
        raise click.ClickException("; ".join(exc.messages)) from None


def in_transaction(fn, data_dir, database_url, create=False):  # type: ignore[no-untyped-def]
    """`fn` on a connection in a transaction of the database the options name."""
    engine = migrated_engine(load_settings(create, data_dir=data_dir, database_url=database_url))
    try:
        with engine.begin() as conn:
            return fn(conn)
    except MsgtrailError as exc:
        raise click.ClickException("; ".join(exc.messages)) from None


def fail(exc: MsgtrailError) -> click.ClickException:
    return click.ClickException("; ".join(exc.messages))


