from __future__ import annotations

import click


@click.group(
    epilog="""\b
Examples:
  vmprep db upgrade --store postgresql://vmprep@db.example/vmprep
  vmprep db status --store postgresql://vmprep@db.example/vmprep"""
)
def db() -> None:
    """Create or upgrade the PostgreSQL store `serve --store` uses (docs/server.md)."""


store_option = click.option(
    "--store",
    metavar="URL",
    required=True,
    help="The postgresql:// URL (keep the password in ~/.pgpass or PGPASSWORD).",
)


@db.command()
@store_option
def upgrade(store: str) -> None:
    """Apply the schema migrations this vmprep has and the database lacks (safe to repeat)."""
    from vmprep.server.dbcli import upgrade as run

    run(store)


@db.command()
@store_option
def status(store: str) -> None:
    """Print the database's schema version and this vmprep's; exit 5 unless they match."""
    from vmprep.server.dbcli import status as run

    run(store)
