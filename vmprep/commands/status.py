from __future__ import annotations

import json
import time
from typing import Any, Literal

import click

from vmprep.cli import output


@click.command(
    epilog="""\b
Examples:
  vmprep status --server https://cfg.example.com --token "$VMPREP_ADMIN_TOKEN"
  vmprep status --server http://127.0.0.1:8080 --format json"""
)
@click.option("--server", required=True, help="The `vmprep serve` URL, e.g. https://cfg:8443.")
@click.option("--token", envvar="VMPREP_ADMIN_TOKEN", help="Admin token (or VMPREP_ADMIN_TOKEN).")
@click.option("--watch", is_flag=True, help="Refresh every 2 seconds until Ctrl-C.")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "json"]),
    default="text",
    help="A table (default) or the server's list as one JSON document.",
)
@click.pass_context
def status(
    ctx: click.Context, server: str, token: str | None, watch: bool, fmt: Literal["text", "json"]
) -> None:
    """Show what each instance reported: role, config serial, steps done/failed, age."""
    from vmprep.server.statusclient import fetch_instances

    while True:
        instances = fetch_instances(server, token)
        if fmt == "json":
            click.echo(json.dumps({"instances": instances}, indent=2))
        else:
            _table(ctx, instances, clear=watch)
        if not watch:
            return
        time.sleep(2)


def _table(ctx: click.Context, instances: list[dict[str, Any]], *, clear: bool) -> None:
    from rich.markup import escape
    from rich.table import Table

    from vmprep.problems import printable
    from vmprep.server.statusclient import COLUMNS, rows

    table = Table(*COLUMNS, title=f"{len(instances)} instance(s)")
    for row in rows(instances):
        table.add_row(*(escape(printable(cell)) for cell in row))  # instances report these
    console = output(ctx).out
    if clear:
        console.clear()
    console.print(table)
