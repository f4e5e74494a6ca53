"""The `msgtrail` command: run the service and workers (`service.py`), manage apps
and their connectors (`apps.py`), load events from a file (`events.py`), back up,
restore and check a store (`operate.py`); `msgtrail export` is the client's
(`msgtrail.client.cli`), loaded only when it runs. What they share is `common.py`.

It starts at once: what a command needs (the database layer, the web stack, the data
stack) is imported inside the command, so `msgtrail --help` and `msgtrail apps list`
load only what they use (bench/cli_start.py measures them).
"""

from __future__ import annotations

import os
from typing import ClassVar

import click

from msgtrail.cli import apps, events, operate, service


class _Commands(click.Group):
    """Subcommands defined elsewhere, imported only when run (or listed in full)."""

    # name: (module, attribute, its line in the help; a test keeps it the command's own)
    lazy: ClassVar[dict[str, tuple[str, str, str]]] = {
        "export": ("msgtrail.client.cli", "export_command",
                   "Export messages' audience activity, or their history, to files.")}

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted([*super().list_commands(ctx), *self.lazy])

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name in self.lazy:
            import importlib

            module, attribute, _ = self.lazy[name]
            found: click.Command = getattr(importlib.import_module(module), attribute)
            return found
        return super().get_command(ctx, name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """The help's list, without importing the lazy commands for their one line."""
        rows = [(name, self.commands[name].get_short_help_str(formatter.width - 20))
                for name in self.commands if not self.commands[name].hidden]
        rows += [(name, help_line) for name, (_, _, help_line) in self.lazy.items()]
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(sorted(rows))


@click.group(cls=_Commands)
@click.option("--log-level", default="info", show_default=True, envvar="MSGTRAIL_LOG_LEVEL")
@click.option("--log-format", type=click.Choice(["console", "json"]), default="console",
              show_default=True, envvar="MSGTRAIL_LOG_FORMAT",
              help="Lines of text, or one JSON object per line for a log collector.")
def main(log_level: str, log_format: str) -> None:
    """msgtrail: per-recipient message activity and its exports."""
    from msgtrail.runtime import logs

    logs.configure(log_level, log_format)
    # `serve --processes N` starts processes that configure their logging from these.
    os.environ["MSGTRAIL_LOG_LEVEL"], os.environ["MSGTRAIL_LOG_FORMAT"] = log_level, log_format


for _command in (service.serve, service.worker, service.db, service.demo, apps.apps,
                 apps.webhooks, events.import_command, operate.backup_command,
                 operate.restore_command, operate.check_command):
    main.add_command(_command)
