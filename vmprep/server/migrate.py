"""Versioned schema migrations for the PostgreSQL store (`vmprep db upgrade`).

The migrations are SQL files in the package, `vmprep/server/migrations/postgresql/NNNN_*.sql`,
applied in order, each in its own transaction together with its row in `schema_version`, so a
failed one leaves the database at the version before it. A session-level advisory lock
(https://www.postgresql.org/docs/current/explicit-locking.html#ADVISORY-LOCKS) makes
concurrent upgrades (two replicas' deploy hooks at once) wait for each other: the second finds
nothing left to do. A database whose schema is newer than this vmprep's migrations is refused,
as is serving from a database not yet upgraded (`check`): serving must never guess at a
schema it does not know.

Why a command and not `serve --migrate`: a schema change is a deliberate step of a rollout,
taken once, before the new replicas start; replicas that migrated on start would race each
other and an older replica still serving would meet a schema it does not know.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources
from typing import TYPE_CHECKING, Any

from vmprep.errors import ExitCode, VmprepError

if TYPE_CHECKING:
    import psycopg

# pg_advisory_lock(bigint): an arbitrary constant, "vmprep" + 1 in ASCII, the same in every
# vmprep version, so that two versions' upgrades exclude each other too.
LOCK_KEY = 0x766D7072657001
_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")


class SchemaError(VmprepError):
    """The database's schema is not the one this vmprep uses (docs/cli.md, exit code 5)."""

    exit_code = ExitCode.SCHEMA


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str


def migrations() -> list[Migration]:
    """The package's migrations in order; their numbers run 1, 2, ... without a gap."""
    folder = resources.files("vmprep.server.migrations").joinpath("postgresql")
    found = []
    for entry in folder.iterdir():
        match = _NAME.match(entry.name)
        if match:
            found.append(Migration(int(match.group(1)), entry.name, entry.read_text("utf-8")))
    found.sort(key=lambda m: m.version)
    if [m.version for m in found] != list(range(1, len(found) + 1)):
        raise AssertionError(f"migrations are not numbered 1..n: {[m.name for m in found]}")
    return found


def latest() -> int:
    return migrations()[-1].version


def current_version(conn: psycopg.Connection[Any]) -> int | None:
    """The schema version recorded in the database; None when vmprep never upgraded it."""
    row = conn.execute("SELECT to_regclass('schema_version') IS NOT NULL").fetchone()
    if not row or not row[0]:
        return None
    found = conn.execute("SELECT max(version) FROM schema_version").fetchone()
    return int(found[0]) if found and found[0] is not None else None


def _too_new(version: int) -> SchemaError:
    return SchemaError(
        f"the database's schema is version {version}, newer than this vmprep knows "
        f"(up to {latest()})",
        hint="a newer vmprep upgraded it: run that version (or newer) here too",
    )


def check(conn: psycopg.Connection[Any]) -> int:
    """The version, if it is exactly the one this vmprep serves; SchemaError otherwise."""
    version = current_version(conn)
    check_status(version)
    assert version is not None
    return version


def upgrade(conn: psycopg.Connection[Any]) -> tuple[int, int]:
    """Apply the pending migrations; (version before, version after). `conn` in autocommit."""
    conn.execute("SELECT pg_advisory_lock(%s)", (LOCK_KEY,))
    try:
        conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_version (version integer PRIMARY KEY,"
            " name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())"
        )
        before = current_version(conn) or 0
        if before > latest():
            raise _too_new(before)
        for migration in migrations():
            if migration.version <= before:
                continue
            with conn.transaction():
                conn.execute(migration.sql.encode("utf-8"))  # several statements: no params
                conn.execute(
                    "INSERT INTO schema_version (version, name) VALUES (%s, %s)",
                    (migration.version, migration.name),
                )
        return before, latest()
    finally:
        conn.execute("SELECT pg_advisory_unlock(%s)", (LOCK_KEY,))


def _connect(url: str) -> psycopg.Connection[Any]:
    from vmprep.errors import UsageError
    from vmprep.server import require_extra

    if not url.startswith(("postgresql://", "postgres://")):
        raise UsageError("--store takes a postgresql:// URL")
    require_extra("psycopg")
    from vmprep.server.pgstore import connect

    return connect(url)


def upgrade_store(url: str) -> tuple[str, int, int]:
    """`vmprep db upgrade`: (the database, without its password; version before; after)."""
    from vmprep.server.pgstore import redact

    with _connect(url) as conn:
        before, after = upgrade(conn)
    return redact(url), before, after


def store_status(url: str) -> tuple[str, int | None, int]:
    """`vmprep db status`: (the database; its version, None for none; this vmprep's).
    SchemaError after that when they differ (the caller prints first: see `check_status`)."""
    from vmprep.server.pgstore import redact

    with _connect(url) as conn:
        return redact(url), current_version(conn), latest()


def check_status(have: int | None) -> None:
    """SchemaError unless `have` is the version this vmprep serves."""
    want = latest()
    if have is None or have < want:
        what = "no vmprep schema" if have is None else f"schema version {have}"
        raise SchemaError(
            f"the database has {what}; this vmprep needs version {want}",
            hint="run `vmprep db upgrade --store URL` once, then start serve",
        )
    if have > want:
        raise _too_new(have)
