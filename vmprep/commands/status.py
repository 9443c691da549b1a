from __future__ import annotations

import time
from typing import Literal

import click


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
    from vmprep.commands.reporters import output
    from vmprep.commands.reporters.status import show_instances
    from vmprep.server.statusclient import fetch_instances

    while True:
        show_instances(output(ctx), fetch_instances(server, token), fmt, clear=watch)
        if not watch:
            return
        time.sleep(2)
