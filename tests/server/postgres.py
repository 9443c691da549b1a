"""A throwaway PostgreSQL cluster for the tests: `initdb` + `pg_ctl` from Debian's
`postgresql` package, in a temporary directory, on a free loopback port.

PostgreSQL refuses to run as root (initdb: "cannot be run as root"), and CI runs as root: then
the cluster belongs to `nobody` and its commands run through util-linux's `runuser`. Missing
binaries skip the tests that need the cluster, unless VMPREP_POSTGRES_REQUIRED=1 (.ci/run
sets it), where they fail.
"""

from __future__ import annotations

import contextlib
import glob
import itertools
import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

import pytest

_names = itertools.count()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def bin_dir() -> Path | None:
    found = shutil.which("pg_ctl")
    if found and Path(found).resolve().parent.joinpath("initdb").exists():
        return Path(found).resolve().parent
    dirs = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda d: int(d.split("/")[-2] or 0))
    return Path(dirs[-1]) if dirs else None


def unavailable(why: str) -> None:
    if os.environ.get("VMPREP_POSTGRES_REQUIRED") == "1":
        pytest.fail(f"PostgreSQL is required here (VMPREP_POSTGRES_REQUIRED=1): {why}")
    pytest.skip(f"no PostgreSQL for the tests: {why}")


class Cluster:
    def __init__(self) -> None:
        found = bin_dir()
        if found is None:
            unavailable("no initdb/pg_ctl (Debian: apt-get install postgresql)")
        assert found is not None  # unavailable() raised otherwise
        self.bin = found
        self.root = Path(tempfile.mkdtemp(prefix="vmprep-pg-"))
        self.user = "nobody" if os.geteuid() == 0 else None
        if self.user is not None:
            if shutil.which("runuser") is None:
                unavailable("running as root and no runuser to run PostgreSQL as nobody")
            shutil.chown(self.root, self.user)
        self.data = self.root / "data"
        self.port = free_port()
        self._run("initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres", "-E", "UTF8",
                  "--no-sync", "--locale=C.UTF-8")  # fmt: skip
        self.start()

    @property
    def base(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}"

    def url(self, database: str = "postgres") -> str:
        return f"{self.base}/{database}"

    def _run(self, tool: str, *args: str) -> None:
        argv = [str(self.bin / tool), *args]
        if self.user is not None:
            argv = ["runuser", "-u", self.user, "--", *argv]
        done = subprocess.run(
            argv, capture_output=True, text=True, timeout=60, cwd=self.root, check=False
        )
        if done.returncode != 0:
            raise AssertionError(f"{tool} failed ({done.returncode}): {done.stderr}{done.stdout}")

    def start(self) -> None:
        options = (
            f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off"
            " -c synchronous_commit=off -c full_page_writes=off -c max_connections=300"
        )
        self._run("pg_ctl", "-D", str(self.data), "-o", options, "-l",
                  str(self.root / "log"), "-w", "-t", "30", "start")  # fmt: skip

    def stop(self, mode: str = "fast") -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "-t", "30", "stop")

    def create_database(self) -> str:
        """A new, empty database; its URL."""
        import psycopg

        name = f"t{os.getpid()}_{next(_names)}"
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def migrated_database(self) -> str:
        from vmprep.server import migrate

        url = self.create_database()
        import psycopg

        with psycopg.connect(url, autocommit=True) as conn:
            migrate.upgrade(conn)
        return url

    def refuse_connections(self, url: str, refuse: bool = True) -> None:
        """Make one database unreachable (or reachable again) without stopping the cluster:
        new connections are refused and the open ones are ended, as in a database outage."""
        import psycopg

        name = url.rsplit("/", 1)[1]
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS {str(not refuse).lower()}')
            if refuse:
                conn.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
                    (name,),
                )

    def destroy(self) -> None:
        with contextlib.suppress(AssertionError):
            self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)
