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
    from vmprep.server.migrate import upgrade_store

    where, before, after = upgrade_store(store)
    if before == after:
        click.echo(f"{where}: schema version {after}, nothing to do")
    else:
        click.echo(f"{where}: schema upgraded from version {before} to {after}")


@db.command()
@store_option
def status(store: str) -> None:
    """Print the database's schema version and this vmprep's; exit 5 unless they match."""
    from vmprep.server.migrate import check_status, store_status

    where, have, want = store_status(store)
    shown = "none" if have is None else str(have)
    click.echo(f"{where}: schema version {shown}; this vmprep uses version {want}")
    check_status(have)
