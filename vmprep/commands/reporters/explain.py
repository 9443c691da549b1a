"""`vmprep render --explain`: what goes where, as one table per file or one JSON document."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from vmprep.commands.reporters import Output
    from vmprep.render.explain import Row
    from vmprep.spec import Spec


def explain_json(spec: Spec, rows: list[Row]) -> dict[str, object]:
    """`render --explain --format json`: one document, a row per setting, in table order."""
    return {
        "version": 1,
        "spec": str(spec.path),
        "rows": [
            {"file": r.target, "setting": r.what, "value": r.value, "source": r.source}
            for r in rows
        ],
    }


def show_explain(output: Output, spec: Spec, rows: list[Row], fmt: str) -> None:
    if fmt == "json":
        click.echo(json.dumps(explain_json(spec, rows), indent=2, ensure_ascii=False))
        return
    from rich.markup import escape
    from rich.table import Table

    from vmprep.problems import printable

    tables: dict[str, Table] = {}
    for row in rows:
        if row.target not in tables:
            title = escape(printable(row.target))
            tables[row.target] = table = Table(title=title, title_justify="left")
            for column in ("setting", "value", f"from {spec.path.name} (line:col path)"):
                table.add_column(escape(printable(column)), overflow="fold")
        cells = (row.what, row.value, row.source)
        tables[row.target].add_row(*(escape(printable(cell)) for cell in cells))
    for table in tables.values():
        output.out.print(table)
