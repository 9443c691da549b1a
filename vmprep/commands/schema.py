from __future__ import annotations

import click


@click.command()
def schema() -> None:
    """Print the spec's JSON Schema (draft 2020-12)."""
    from vmprep.spec.schema import schema_text

    click.echo(schema_text(), nl=False)
