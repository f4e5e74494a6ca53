"""Events loaded from a file: `msgtrail import` of a OneSignal audience-activity CSV."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import click

from msgtrail.cli.common import (
    data_dir_option,
    data_process,
    database_option,
    engine_and_app,
    load_settings,
    process_metrics,
)
from msgtrail.clock import now
from msgtrail.errors import MsgtrailError


@click.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--app-id", required=True, help="The app the message belongs to.")
@click.option("--message-id", default=None, help="The message [default: the id in "
              "OneSignal's file name, else one derived from the file].")
@click.option("--json", "as_json", is_flag=True, help="Print what was imported as JSON.")
@data_dir_option
@database_option
def import_command(file, app_id, message_id, as_json, data_dir, database_url) -> None:  # type: ignore[no-untyped-def]
    """Load a OneSignal audience-activity CSV (.csv or .csv.gz) as a message's events."""
    from msgtrail.ingest.importer import import_file

    data_process()
    process_metrics(load_settings(data_dir=data_dir, database_url=database_url))
    from msgtrail.runtime import metrics

    engine, app = engine_and_app(app_id, data_dir, database_url)
    try:
        done = import_file(engine, app, file, message_id, now())
    except MsgtrailError as exc:
        raise click.ClickException("; ".join(exc.messages)) from None
    metrics.EVENTS_ACCEPTED.labels("import").inc(done.events)
    if as_json:
        click.echo(json.dumps(dataclasses.asdict(done)))
        return
    click.echo(f"message {done.message_id} ({done.channel}, "
               f"{'created' if done.created else 'existing'}): {done.recipients:,} "
               f"recipients, {done.events:,} events")
    if done.without_events:
        click.echo(f"{done.without_events:,} row(s) had no event time and add nothing",
                   err=True)


