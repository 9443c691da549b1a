"""`vmprep db upgrade` and `vmprep db status`: the PostgreSQL store's schema (vmprep.server.migrate)."""

from __future__ import annotations

import click

from vmprep.errors import UsageError
from vmprep.server import require_extra

SCHEMES = ("postgresql://", "postgres://")


def _connect(url: str):  # type: ignore[no-untyped-def]
    if not url.startswith(SCHEMES):
        raise UsageError("--store takes a postgresql:// URL")
    require_extra("psycopg")
    from vmprep.server.pgstore import connect

    return connect(url)


def upgrade(url: str) -> None:
    from vmprep.server import migrate
    from vmprep.server.pgstore import redact

    with _connect(url) as conn:
        before, after = migrate.upgrade(conn)
    where = redact(url)
    if before == after:
        click.echo(f"{where}: schema version {after}, nothing to do")
    else:
        click.echo(f"{where}: schema upgraded from version {before} to {after}")


def status(url: str) -> None:
    from vmprep.server import migrate
    from vmprep.server.pgstore import redact

    with _connect(url) as conn:
        have = migrate.current_version(conn)
        click.echo(
            f"{redact(url)}: schema version {have if have is not None else 'none'}; "
            f"this vmprep uses version {migrate.latest()}"
        )
        migrate.check(conn)
