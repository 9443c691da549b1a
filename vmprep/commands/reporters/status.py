"""`vmprep status`: the server's instance list as a rich table or one JSON document."""

from __future__ import annotations

import json
from typing import Any, Literal

import click

from vmprep.commands.reporters import Output


def show_instances(
    output: Output, instances: list[dict[str, Any]], fmt: Literal["text", "json"], *, clear: bool
) -> None:
    """`clear` (--watch): the table replaces the previous one on the screen."""
    if fmt == "json":
        click.echo(json.dumps({"instances": instances}, indent=2))
        return
    from rich.markup import escape
    from rich.table import Table

    from vmprep.problems import printable
    from vmprep.server.statusclient import COLUMNS, rows

    table = Table(*COLUMNS, title=f"{len(instances)} instance(s)")
    for row in rows(instances):
        table.add_row(*(escape(printable(cell)) for cell in row))  # instances report these
    console = output.out
    if clear:
        console.clear()
    console.print(table)
