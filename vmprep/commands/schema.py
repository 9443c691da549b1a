from __future__ import annotations

import click


def complete_definition(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[str]:
    """Shell completion of --definition: the schema's `$defs` names."""
    from vmprep.spec.schema import schema

    return sorted(name for name in schema()["$defs"] if name.startswith(incomplete))


@click.command(
    epilog="""\b
Examples:
  vmprep schema > vmprep.schema.json
  vmprep schema --definition roleConfig > role-config.schema.json"""
)
@click.option(
    "--definition",
    metavar="NAME",
    shell_complete=complete_definition,
    help="Print one definition as a standalone schema (e.g. roleConfig for config repositories).",
)
def schema(definition: str | None) -> None:
    """Print the spec's JSON Schema (draft 2020-12)."""
    from vmprep.spec.schema import definition_text, schema_text

    click.echo(schema_text() if definition is None else definition_text(definition), nl=False)
