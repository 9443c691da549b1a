from __future__ import annotations

import click


@click.command()
@click.option(
    "--definition",
    metavar="NAME",
    help="Print one definition as a standalone schema (e.g. roleConfig for config repositories).",
)
def schema(definition: str | None) -> None:
    """Print the spec's JSON Schema (draft 2020-12)."""
    from vmprep.spec.schema import definition_text, schema_text

    click.echo(schema_text() if definition is None else definition_text(definition), nl=False)
