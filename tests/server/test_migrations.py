"""`vmprep db upgrade` / `db status` and serve's schema check (issue 17)."""

from __future__ import annotations

import subprocess
import sys
import threading

import psycopg
import pytest

from tests.server.conftest import write_repo
from vmprep.errors import ExitCode
from vmprep.server import migrate
from vmprep.server.keys import write_keypair


def vmprep(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "vmprep", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_the_migrations_are_numbered_from_one_without_a_gap():
    found = migrate.migrations()
    assert [m.version for m in found] == list(range(1, len(found) + 1))
    assert migrate.latest() == found[-1].version


def test_upgrade_creates_the_schema_and_a_second_run_does_nothing(postgres):
    url = postgres.create_database()
    first = vmprep("db", "upgrade", "--store", url)
    assert first.returncode == 0, first.stderr
    assert f"schema upgraded from version 0 to {migrate.latest()}" in first.stdout
    again = vmprep("db", "upgrade", "--store", url)
    assert again.returncode == 0, again.stderr
    assert "nothing to do" in again.stdout
    status = vmprep("db", "status", "--store", url)
    assert status.returncode == 0
    with psycopg.connect(url) as conn:
        versions = conn.execute("SELECT version FROM schema_version ORDER BY 1").fetchall()
    assert versions == [(v,) for v in range(1, migrate.latest() + 1)]


def test_concurrent_upgrades_wait_for_each_other(postgres):
    url = postgres.create_database()
    results: list[tuple[int, int]] = []

    def run() -> None:
        with psycopg.connect(url, autocommit=True) as conn:
            results.append(migrate.upgrade(conn))

    threads = [threading.Thread(target=run) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    last = migrate.latest()
    assert sorted(results) == [(0, last), (last, last), (last, last), (last, last)]


def test_a_newer_schema_is_refused_by_upgrade_status_and_serve(postgres, tmp_path):
    url = postgres.migrated_database()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("INSERT INTO schema_version (version, name) VALUES (99, '0099_future.sql')")
    for args in (("db", "upgrade", "--store", url), ("db", "status", "--store", url)):
        done = vmprep(*args)
        assert done.returncode == 5
        assert ExitCode.SCHEMA.value == 5
        assert "schema is version 99, newer than this vmprep knows" in done.stderr
        assert "Traceback" not in done.stderr
    served = vmprep(*_serve_args(tmp_path, url))
    assert served.returncode == 5
    assert "newer than this vmprep knows" in served.stderr


def _serve_args(tmp_path, url: str) -> list[str]:
    configs = write_repo(tmp_path / "configs")
    write_keypair(tmp_path / "k")
    return ["serve", "--configs", str(configs), "--key", str(tmp_path / "k.pem"), "--store", url]


def test_an_older_schema_is_upgraded_step_by_step(postgres):
    url = postgres.create_database()
    with psycopg.connect(url, autocommit=True) as conn:
        first = migrate.migrations()[0]
        conn.execute(
            "CREATE TABLE schema_version (version integer PRIMARY KEY, name text NOT NULL,"
            " applied_at timestamptz NOT NULL DEFAULT now())"
        )
        conn.execute(first.sql.encode())
        conn.execute("INSERT INTO schema_version (version, name) VALUES (1, %s)", (first.name,))
        if migrate.latest() > 1:
            with pytest.raises(migrate.SchemaError, match="schema version 1; this vmprep needs"):
                migrate.check(conn)
        assert migrate.upgrade(conn) == (1, migrate.latest())
        assert migrate.check(conn) == migrate.latest()


def test_serve_refuses_a_database_not_yet_upgraded_with_a_hint(postgres, tmp_path):
    done = vmprep(*_serve_args(tmp_path, postgres.create_database()))
    assert done.returncode == 5
    assert "the database has no vmprep schema; this vmprep needs version" in done.stderr
    assert "vmprep db upgrade --store URL" in done.stderr


@pytest.mark.parametrize(
    ("store", "code", "message"),
    [
        ("mysql://db/x", 2, "--store takes a postgresql:// URL"),
        ("postgresql://nobody:s3cret@127.0.0.1:1/x", 4, "cannot connect to the store at"),
    ],
)
def test_a_bad_or_unreachable_store_is_a_clear_error(tmp_path, store, code, message):
    done = vmprep(*_serve_args(tmp_path, store))
    assert done.returncode == code
    assert message in done.stderr
    assert "s3cret" not in done.stderr  # a password in the URL is never printed
    assert "Traceback" not in done.stderr
