"""The status store in PostgreSQL, shared by any number of `serve` replicas (issue 17).

Same interface and same answers as `SqliteStore` (tests/server/test_store_conformance.py
runs one suite against both); what differs is how consistency is kept across processes:

- serials come from one sequence (`nextval` never goes back, across replicas and restarts);
- issuing for one (role, target) is serialized by a transaction-level advisory lock on that
  key, so concurrent first fetches of one instance on two replicas get the same serial;
- a report is stored with `INSERT ... ON CONFLICT (report_id) DO NOTHING`: whichever replica
  commits first wins, the other answers `stored: false`;
- rows are locked in key order inside a batch, so two replicas' batches never deadlock (a
  deadlock or serialization failure is retried anyway).

Connections come from a psycopg_pool pool; the hot statements are prepared on the server
(psycopg's `prepare=True`: https://www.psycopg.org/psycopg3/docs/advanced/prepare.html).
A database that cannot be reached raises StoreUnavailable (503 + Retry-After to agents); a
pooled connection the server dropped (a restart) is replaced and the call tried once more.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from typing import Any, TypeVar

import psycopg
import psycopg.errors
from psycopg_pool import ConnectionPool, PoolTimeout

from vmprep.errors import ExternalToolError
from vmprep.protocol.timestamps import format_rfc3339 as _iso
from vmprep.server import fleet, migrate
from vmprep.server.fleet import Served
from vmprep.server.store import (
    _COLUMNS,
    MIN_RETENTION,
    Attestation,
    Issue,
    NewReport,
    NonceResult,
    StoreUnavailable,
    _summary,
    _summary_row,
)

log = logging.getLogger("vmprep.server")
T = TypeVar("T")
SCHEMES = ("postgresql://", "postgres://")
# pg_advisory_xact_lock(int, int): this class ("vmpr") and a hash of the (role, target)
_ISSUE_LOCK = 0x766D7072
_NONCE_LOCK = 0x766D706E  # ("vmpn") and a hash of the instance id: its challenges, one at a time
_RETRIED = (psycopg.errors.DeadlockDetected, psycopg.errors.SerializationFailure)
DOWN_TIMEOUT = 0.25  # seconds to wait for a connection while the database is known down

_UPSERT = (
    f"INSERT INTO instances ({_COLUMNS}) VALUES ({', '.join(['%s'] * 15)})"
    f" ON CONFLICT (instance_id) DO UPDATE SET ({_COLUMNS}) ="
    f" ({', '.join(f'excluded.{c.strip()}' for c in _COLUMNS.split(','))})"
    " WHERE excluded.sent >= instances.sent"
)


def is_url(value: str) -> bool:
    return value.startswith(SCHEMES)


def redact(url: str) -> str:
    """The URL without its password, for messages and logs."""
    try:
        params = psycopg.conninfo.conninfo_to_dict(url)
    except psycopg.ProgrammingError:
        return "the --store URL"
    host, port, db = params.get("host", ""), params.get("port", ""), params.get("dbname", "")
    user = params.get("user")
    return f"postgresql://{f'{user}@' if user else ''}{host}{f':{port}' if port else ''}/{db}"


class _OncePerInterval(logging.Filter):
    """psycopg_pool logs every failed reconnection attempt: while the database is down, one
    such line per `every` seconds says why (the rest are counted, like ratelog's)."""

    def __init__(self, every: float = 10.0) -> None:
        super().__init__()
        self.every, self._next, self._held = every, 0.0, 0

    def filter(self, record: logging.LogRecord) -> bool:
        now = time.monotonic()
        if now < self._next:
            self._held += 1
            return False
        if self._held:
            record.msg = f"{record.msg} (and {self._held} more such lines held back)"
        self._next, self._held = now + self.every, 0
        return True


_pool_log = logging.getLogger("psycopg.pool")
if not any(isinstance(f, _OncePerInterval) for f in _pool_log.filters):
    _pool_log.addFilter(_OncePerInterval())


@functools.lru_cache(maxsize=256)
def _pg(sql: str) -> str:
    """fleet.py's `?` placeholders as psycopg's `%s` (its SQL holds no literal ? or %)."""
    return sql.replace("%", "%%").replace("?", "%s")


class _Db:
    """A psycopg connection with sqlite3's `execute(sql, args)` shape, for fleet.py."""

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self.conn = conn

    def execute(self, sql: str, args: Sequence[Any] = (), /) -> psycopg.Cursor[Any]:
        return self.conn.execute(_pg(sql), list(args))

    def executemany(self, sql: str, args: Iterable[Sequence[Any]], /) -> None:
        with self.conn.cursor() as cur:
            cur.executemany(_pg(sql), [list(a) for a in args])


class PostgresStore:
    remote = True

    def __init__(
        self,
        url: str,
        *,
        retention: float = 30 * 86400,
        min_size: int = 1,
        max_size: int = 8,
        timeout: float = 5.0,
    ) -> None:
        self.url = url
        self.retention = max(retention, MIN_RETENTION)
        self.timeout = timeout
        self.down = False
        self.pool = ConnectionPool(
            url,
            min_size=min_size,
            max_size=max_size,
            timeout=timeout,
            open=False,
            kwargs={"autocommit": True, "connect_timeout": max(1, int(timeout))},
            name="vmprep-store",
        )
        try:
            self.pool.open(wait=True, timeout=timeout)
            with self.pool.connection() as conn:
                migrate.check(conn)
        except (PoolTimeout, psycopg.OperationalError) as exc:
            self.pool.close()
            raise ExternalToolError(
                f"cannot connect to the store at {redact(url)}: {_reason(exc)}",
                hint="is PostgreSQL running and reachable, and the URL's user allowed in?",
            ) from None
        except BaseException:
            self.pool.close()
            raise

    # -- plumbing ----------------------------------------------------------------------------

    @contextmanager
    def _conn(self) -> Iterator[psycopg.Connection[Any]]:
        # While the database is known to be down, wait only briefly for a connection: agents
        # get their 503 at once instead of after the whole timeout, and requests do not pile
        # up; the pool keeps reconnecting in the background, and the first success clears it.
        timeout = DOWN_TIMEOUT if self.down else self.timeout
        try:
            with self.pool.connection(timeout=timeout) as conn:
                yield conn
        except PoolTimeout as exc:
            self.down = True
            raise StoreUnavailable(f"no connection to {redact(self.url)}: {exc}") from None
        self.down = False

    def _run(self, work: Callable[[psycopg.Connection[Any]], T]) -> T:
        """`work` on a pooled connection; once more on a connection the server dropped (the
        pool replaces it), a few times on a deadlock; StoreUnavailable when the database is
        unreachable."""
        dropped = deadlocks = 0
        while True:
            failure = self._attempt(work)
            if not isinstance(failure, BaseException):
                return failure
            if isinstance(failure, _RETRIED) and deadlocks < 3:
                deadlocks += 1
                time.sleep(0.01 * deadlocks)
            elif isinstance(failure, psycopg.OperationalError) and not dropped:
                dropped += 1
            elif isinstance(failure, psycopg.OperationalError):
                self.down = True
                raise StoreUnavailable(f"{redact(self.url)}: {_reason(failure)}") from None
            else:
                raise failure

    def _attempt(self, work: Callable[[psycopg.Connection[Any]], T]) -> T | psycopg.Error:
        try:
            with self._conn() as conn:
                return work(conn)
        except (psycopg.OperationalError, *_RETRIED) as exc:
            return exc

    def ping(self) -> None:
        def ping(conn: psycopg.Connection[Any]) -> None:
            conn.execute("SELECT 1")

        self._run(ping)

    # -- the Store interface -----------------------------------------------------------------

    def issue(self, role: str, target: str, digest: str, ttl: int, now: float) -> Issue:
        def issue(conn: psycopg.Connection[Any]) -> Issue:
            with conn.transaction():
                conn.execute(
                    "SELECT pg_advisory_xact_lock(%s, %s)",
                    (_ISSUE_LOCK, _key32(f"{role}/{target}")),
                    prepare=True,
                )
                row = conn.execute(
                    "SELECT digest, first_serial, serial, issued_at, expires_at FROM documents"
                    " WHERE role = %s AND target = %s",
                    (role, target),
                    prepare=True,
                ).fetchone()
                if (
                    row is not None
                    and row[0] == digest
                    and row[4] - row[3] == ttl
                    and row[3] - 300 <= now < row[3] + ttl / 2
                ):
                    return Issue(row[2], row[1], row[3], row[4])
                found = conn.execute("SELECT nextval('serials')", prepare=True).fetchone()
                assert found is not None
                serial = int(found[0])
                first = row[1] if row is not None and row[0] == digest else serial
                issued = int(now)
                conn.execute(
                    "INSERT INTO documents VALUES (%s, %s, %s, %s, %s, %s, %s)"
                    " ON CONFLICT (role, target) DO UPDATE SET digest = excluded.digest,"
                    " first_serial = excluded.first_serial, serial = excluded.serial,"
                    " issued_at = excluded.issued_at, expires_at = excluded.expires_at",
                    (role, target, digest, first, serial, issued, issued + ttl),
                    prepare=True,
                )
                conn.execute(
                    "INSERT INTO issued VALUES (%s, %s, %s, %s)",
                    (serial, role, target, digest),
                    prepare=True,
                )
            return Issue(serial, first, issued, issued + ttl)

        return self._run(issue)

    def current_serial(self, role: str, target: str) -> int | None:
        def find(conn: psycopg.Connection[Any]) -> Any:
            return conn.execute(
                "SELECT serial FROM documents WHERE role = %s AND target = %s",
                (role, target),
                prepare=True,
            ).fetchone()

        row = self._run(find)
        return None if row is None else int(row[0])

    def issued_for(self, serial: int) -> tuple[str, str, str] | None:
        if not -(2**63) <= serial < 2**63:
            return None

        def find(conn: psycopg.Connection[Any]) -> Any:
            return conn.execute(
                "SELECT role, target, digest FROM issued WHERE serial = %s",
                (serial,),
                prepare=True,
            ).fetchone()

        row = self._run(find)
        return None if row is None else (row[0], row[1], row[2])

    def add_report(self, report: dict[str, Any], body: bytes, sent: float, now: float) -> bool:
        return self.add_reports([NewReport(report, body, sent, now)])[0]

    def add_reports(self, batch: list[NewReport]) -> list[bool]:
        """One transaction; rows locked in key order (reports, then instances)."""
        order = sorted(range(len(batch)), key=lambda i: (batch[i].report["report_id"], i))

        def add(conn: psycopg.Connection[Any]) -> list[bool]:
            stored = [False] * len(batch)
            with conn.transaction():
                for i in order:
                    item = batch[i]
                    cur = conn.execute(
                        "INSERT INTO reports VALUES (%s, %s, %s, %s, %s)"
                        " ON CONFLICT (report_id) DO NOTHING",
                        (
                            item.report["report_id"],
                            item.report["instance_id"],
                            item.now,
                            item.sent,
                            item.body.decode(),
                        ),
                        prepare=True,
                    )
                    stored[i] = cur.rowcount == 1
                # a spooled, older report does not hide a newer one; ties: the later one wins
                fresh = sorted(
                    (i for i in range(len(batch)) if stored[i]),
                    key=lambda i: (batch[i].report["instance_id"], i),
                )
                for i in fresh:
                    conn.execute(_UPSERT, _summary_row(batch[i]), prepare=True)
            return stored

        return self._run(add)

    def instances(self) -> list[dict[str, Any]]:
        def rows(conn: psycopg.Connection[Any]) -> list[Any]:
            return conn.execute(
                f"SELECT {_COLUMNS} FROM instances ORDER BY sent DESC, instance_id DESC"
            ).fetchall()

        return [_summary(r) for r in self._run(rows)]

    def instance(self, instance_id: str, limit: int = 20) -> dict[str, Any] | None:
        def find(conn: psycopg.Connection[Any]) -> tuple[Any, list[Any]] | None:
            with conn.transaction():  # one snapshot: the summary and its reports agree
                row = conn.execute(
                    f"SELECT {_COLUMNS} FROM instances WHERE instance_id = %s", (instance_id,)
                ).fetchone()
                if row is None:
                    return None
                reports = conn.execute(
                    "SELECT body, received_at FROM reports WHERE instance_id = %s"
                    " ORDER BY sent DESC, received_at DESC LIMIT %s",
                    (instance_id, limit),
                ).fetchall()
            return row, reports

        found = self._run(find)
        if found is None:
            return None
        row, reports = found
        return {
            "instance": _summary(row),
            "reports": [{"received_at": _iso(t), "report": json.loads(b)} for b, t in reports],
        }

    def computer_name(self, instance_id: str) -> str | None:
        def find(conn: psycopg.Connection[Any]) -> Any:
            return conn.execute(
                "SELECT computer_name FROM instances WHERE instance_id = %s",
                (instance_id,),
                prepare=True,
            ).fetchone()

        row = self._run(find)
        return None if row is None or row[0] is None else str(row[0])

    def prune(self, now: float) -> int:
        """Drop reports older than the retention, but never an instance's latest one."""

        def prune(conn: psycopg.Connection[Any]) -> int:
            cur = conn.execute(
                "DELETE FROM reports r WHERE received_at < %s AND NOT EXISTS"
                " (SELECT 1 FROM instances i WHERE i.report_id = r.report_id)",
                (now - self.retention,),
            )
            return cur.rowcount

        return self._run(prune)

    def add_served(self, batch: list[Served]) -> None:
        def add(conn: psycopg.Connection[Any]) -> None:
            with conn.transaction():
                fleet.record_served(_Db(conn), batch)

        self._run(add)

    def fleet(self, **query: Any) -> dict[str, Any]:
        def page(conn: psycopg.Connection[Any]) -> dict[str, Any]:
            with conn.transaction():
                return fleet.fleet_page(_Db(conn), **query)

        return self._run(page)

    def timeline(self, instance_id: str) -> dict[str, Any]:
        def detail(conn: psycopg.Connection[Any]) -> dict[str, Any]:
            with conn.transaction():
                return fleet.instance_detail(_Db(conn), instance_id)

        return self._run(detail)

    # -- attestation (issue #15) -------------------------------------------------------------

    def add_nonce(
        self, nonce: str, instance_id: str, expires_at: float, now: float, cap: int
    ) -> NonceResult:
        def add(conn: psycopg.Connection[Any]) -> NonceResult:
            with conn.transaction():
                # the cap holds across replicas: one instance's challenges are counted and
                # stored one transaction at a time
                conn.execute(
                    "SELECT pg_advisory_xact_lock(%s, %s)",
                    (_NONCE_LOCK, _key32(instance_id)),
                    prepare=True,
                )
                conn.execute("DELETE FROM nonces WHERE expires_at <= %s", (now,), prepare=True)
                found = conn.execute(
                    "SELECT count(*) FROM nonces WHERE instance_id = %s",
                    (instance_id,),
                    prepare=True,
                ).fetchone()
                if found is None or found[0] >= cap:
                    return "full"
                cur = conn.execute(
                    "INSERT INTO nonces VALUES (%s, %s, %s) ON CONFLICT (nonce) DO NOTHING",
                    (nonce, instance_id, expires_at),
                    prepare=True,
                )
                return "stored" if cur.rowcount == 1 else "taken"

        return self._run(add)

    def take_nonce(self, nonce: str, now: float) -> str | None:
        def take(conn: psycopg.Connection[Any]) -> Any:
            # one statement: of two replicas presented the same nonce, one gets the row
            return conn.execute(
                "DELETE FROM nonces WHERE nonce = %s RETURNING instance_id, expires_at",
                (nonce,),
                prepare=True,
            ).fetchone()

        row = self._run(take)
        return None if row is None or row[1] <= now else str(row[0])

    def add_attestation(self, record: Attestation) -> Attestation:
        def add(conn: psycopg.Connection[Any]) -> Any:
            return conn.execute(
                "INSERT INTO attestations VALUES (%s, %s, %s, %s, %s, %s, %s, %s, 1)"
                " ON CONFLICT (instance_id) DO UPDATE SET role = excluded.role,"
                " kind = excluded.kind, attested_id = excluded.attested_id,"
                " scope = excluded.scope, issued_at = excluded.issued_at,"
                " last_at = excluded.last_at, admitted = attestations.admitted + 1"
                " RETURNING first_at, admitted",
                (
                    record.instance_id,
                    record.role,
                    record.kind,
                    record.attested_id,
                    record.scope,
                    record.issued_at,
                    record.first_at,
                    record.last_at,
                ),
                prepare=True,
            ).fetchone()

        row = self._run(add)
        return replace(record, first_at=row[0], admitted=row[1])

    def attestation(self, instance_id: str) -> Attestation | None:
        def find(conn: psycopg.Connection[Any]) -> Any:
            return conn.execute(
                "SELECT instance_id, role, kind, attested_id, scope, issued_at, first_at,"
                " last_at, admitted FROM attestations WHERE instance_id = %s",
                (instance_id,),
                prepare=True,
            ).fetchone()

        row = self._run(find)
        return None if row is None else Attestation(*row)

    def close(self) -> None:
        self.pool.close()


def _key32(text: str) -> int:
    """A signed 32-bit advisory-lock key for a (role, target): a collision only makes two
    targets' first issues wait for each other."""
    digest = hashlib.blake2b(text.encode("utf-8"), digest_size=4).digest()
    return int.from_bytes(digest, "big", signed=True)


def _reason(exc: BaseException) -> str:
    """The first line of a driver error (libpq's messages run on with details)."""
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def connect(url: str, timeout: float = 10.0) -> psycopg.Connection[Any]:
    """One plain connection (for `vmprep db`), or ExternalToolError."""
    try:
        return psycopg.connect(url, autocommit=True, connect_timeout=max(1, int(timeout)))
    except psycopg.Error as exc:
        raise ExternalToolError(
            f"cannot connect to {redact(url)}: {_reason(exc)}",
            hint="is PostgreSQL running and reachable, and the URL's user allowed in?",
        ) from None
