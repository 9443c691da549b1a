"""The status store: issued serials, reports (deduplicated by report_id) and the latest
report per instance. `Store` is the interface; `SqliteStore` (stdlib sqlite3, WAL) the
default implementation, in a data directory, so nothing needs installing;
`vmprep.server.pgstore.PostgresStore` the one several `serve` replicas share (issue 17).
"""

from __future__ import annotations

import json
import sqlite3
import threading
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal, Protocol

from vmprep.errors import InputError
from vmprep.protocol.timestamps import format_rfc3339
from vmprep.server import fleet
from vmprep.server.fleet import Served

MIN_RETENTION = 86400  # docs/protocol.md: report_ids are remembered for at least 24 hours

_SCHEMA = """
CREATE TABLE IF NOT EXISTS counter (id INTEGER PRIMARY KEY CHECK (id = 1), serial INTEGER);
CREATE TABLE IF NOT EXISTS documents (
    role TEXT, target TEXT, digest TEXT, first_serial INTEGER, serial INTEGER,
    issued_at INTEGER, expires_at INTEGER, PRIMARY KEY (role, target));
CREATE TABLE IF NOT EXISTS issued (serial INTEGER PRIMARY KEY, role TEXT, target TEXT,
    digest TEXT);
CREATE TABLE IF NOT EXISTS reports (report_id TEXT PRIMARY KEY, instance_id TEXT NOT NULL,
    received_at REAL NOT NULL, sent REAL NOT NULL, body TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS reports_by_instance ON reports (instance_id, sent);
CREATE TABLE IF NOT EXISTS instances (instance_id TEXT PRIMARY KEY, role TEXT,
    computer_name TEXT, agent_version TEXT, config_serial INTEGER, state TEXT,
    steps_done INTEGER, steps_failed INTEGER, steps_total INTEGER, error TEXT,
    report_id TEXT, sent_at TEXT, received_at REAL, sent REAL, inputs TEXT);
INSERT OR IGNORE INTO counter (id, serial) VALUES (1, 0);
"""

# Issue #15 (docs/attestation.md). New tables only, so a data directory from before them is
# upgraded by creating them (CREATE ... IF NOT EXISTS, on every open).
ATTESTATION_SCHEMA = """
CREATE TABLE IF NOT EXISTS nonces (nonce TEXT PRIMARY KEY, instance_id TEXT NOT NULL,
    expires_at REAL NOT NULL);
CREATE INDEX IF NOT EXISTS nonces_by_instance ON nonces (instance_id, expires_at);
CREATE TABLE IF NOT EXISTS attestations (instance_id TEXT PRIMARY KEY, role TEXT NOT NULL,
    kind TEXT NOT NULL, attested_id TEXT NOT NULL, scope TEXT, issued_at REAL NOT NULL,
    first_at REAL NOT NULL, last_at REAL NOT NULL, admitted INTEGER NOT NULL);
"""

NonceResult = Literal["stored", "full", "taken"]


class StoreUnavailable(Exception):
    """The store cannot be reached right now (a database down or restarting): the request
    is answered 503 with Retry-After, which agents retry (docs/server.md "Failure modes")."""


@dataclass(frozen=True)
class Issue:
    serial: int
    first_serial: int
    issued_at: int
    expires_at: int


@dataclass(frozen=True)
class Attestation:
    """The attestation that admitted an instance (docs/attestation.md).

    `scope`: the Azure subscription, AWS account or GCE project the cloud vouched for;
    `issued_at`: the document's own time (Azure timeStamp.createdOn, AWS pendingTime, GCE
    iat), epoch seconds; `first_at`/`last_at`: when this service first/last admitted the
    instance with an attestation; `admitted`: how many times."""

    instance_id: str
    role: str
    kind: str
    attested_id: str
    scope: str | None
    issued_at: float
    first_at: float
    last_at: float
    admitted: int = 1

    def to_json(self) -> dict[str, Any]:
        return {
            "role": self.role,
            "kind": self.kind,
            "attested_id": self.attested_id,
            "scope": self.scope,
            "issued_at": format_rfc3339(self.issued_at),
            "first_at": format_rfc3339(self.first_at),
            "last_at": format_rfc3339(self.last_at),
            "admitted": self.admitted,
        }


class Store(Protocol):
    # True when a call may wait on the network (PostgreSQL): the app then calls the store
    # from a worker thread, so a slow or down database never stalls the event loop.
    remote: bool

    def ping(self) -> None:
        """Raise StoreUnavailable unless the store answers now (`/readyz`)."""

    def issue(self, role: str, target: str, digest: str, ttl: int, now: float) -> Issue:
        """The current issue for (role, target) with this content, or a new one."""

    def issued_for(self, serial: int) -> tuple[str, str, str] | None:
        """(role, target, digest) of an issued serial."""

    def current_serial(self, role: str, target: str) -> int | None:
        """The serial last issued for (role, target), by any process sharing the store."""

    def add_reports(self, batch: list[NewReport]) -> list[bool]:
        """Store checked reports; for each, False when its report_id was seen before (then
        nothing is stored: the first body wins)."""

    def instances(self) -> list[dict[str, Any]]:
        """The latest report's summary per instance, newest first."""

    def instance(self, instance_id: str, limit: int = 20) -> dict[str, Any] | None:
        """One instance's summary and its reports, newest first."""

    def computer_name(self, instance_id: str) -> str | None: ...

    def prune(self, now: float) -> int: ...

    def add_served(self, batch: list[Served]) -> None:
        """Record documents served: (instance, serial) first/last time and how often."""

    def fleet(self, **query: Any) -> dict[str, Any]:
        """Counts per role and state, and one page of instances (vmprep.server.fleet)."""

    def timeline(self, instance_id: str) -> dict[str, Any]:
        """One instance's reports as a timeline and the documents it was served."""

    def add_nonce(
        self, nonce: str, instance_id: str, expires_at: float, now: float, cap: int
    ) -> NonceResult:
        """Keep a challenge nonce issued to `instance_id` until `expires_at`. "full" (nothing
        stored) when the instance already holds `cap` unexpired nonces; "taken" when the
        nonce is outstanding already (the caller draws another). Drops expired nonces."""

    def take_nonce(self, nonce: str, now: float) -> str | None:
        """Consume `nonce`: the instance id it was issued to, or None when it is unknown or
        expired. Single use: deleted in any case, whatever the caller does next."""

    def add_attestation(self, record: Attestation) -> Attestation:
        """Record that `record.instance_id` was admitted by an attestation. An instance
        admitted before keeps its `first_at` and counts one more `admitted`; the rest is
        replaced. Returns the stored record."""

    def attestation(self, instance_id: str) -> Attestation | None:
        """The attestation that last admitted `instance_id`."""

    def close(self) -> None: ...


_COLUMNS = (
    "instance_id, role, computer_name, agent_version, config_serial, state, steps_done, "
    "steps_failed, steps_total, error, report_id, sent_at, received_at, sent, inputs"
)


_EXCLUDED = ", ".join(f"excluded.{c.strip()}" for c in _COLUMNS.split(","))
_UPSERT = (
    f"INSERT INTO instances ({_COLUMNS}) VALUES ({', '.join('?' * 15)}) ON CONFLICT (instance_id)"
    f" DO UPDATE SET ({_COLUMNS}) = ({_EXCLUDED}) WHERE excluded.sent >= sent"
)


@dataclass(frozen=True)
class NewReport:
    report: dict[str, Any]  # checked by vmprep.server.reports.parse_report
    body: bytes  # stored as received: the first body of a report_id wins
    sent: float  # its sent_at, epoch seconds
    now: float  # when it was received


def _summary_row(item: NewReport) -> tuple[Any, ...]:
    report, steps, error = item.report, item.report["steps"], item.report.get("error")
    return (
        report["instance_id"],
        report["role"],
        report.get("computer_name"),
        report["agent_version"],
        report.get("config_serial"),
        report["state"],
        sum(1 for s in steps if s.get("status") == "done"),
        sum(1 for s in steps if s.get("status") in ("failed", "interrupted")),
        len(steps),
        None if error is None else json.dumps(error),
        report["report_id"],
        report["sent_at"],
        item.now,
        item.sent,
        json.dumps(report["inputs"], sort_keys=True) if report.get("inputs") else None,
    )


class SqliteStore:
    remote = False

    def __init__(self, data_dir: Path, *, retention: float = 30 * 86400) -> None:
        try:
            data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
            self.db = sqlite3.connect(
                data_dir / "vmprep.sqlite3", check_same_thread=False, isolation_level=None
            )
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=NORMAL")
            self.db.execute("PRAGMA busy_timeout=5000")
            self.db.executescript(_SCHEMA)
            _add_column(self.db, "instances", "inputs", "TEXT")  # a store from before #20
            self.db.executescript(fleet.SCHEMA)
            self.db.executescript(ATTESTATION_SCHEMA)
        except (OSError, sqlite3.Error) as exc:
            raise InputError(f"{data_dir}: cannot open the status store: {exc}") from None
        self.retention = max(retention, MIN_RETENTION)
        self._lock = threading.Lock()

    def ping(self) -> None:
        try:
            with self._lock:
                self.db.execute("SELECT 1").fetchone()
        except sqlite3.Error as exc:
            raise StoreUnavailable(f"the SQLite store does not answer: {exc}") from None

    def issue(self, role: str, target: str, digest: str, ttl: int, now: float) -> Issue:
        with self._lock:
            self.db.execute("BEGIN IMMEDIATE")  # several serve processes may share the file
            try:
                row = self.db.execute(
                    "SELECT digest, first_serial, serial, issued_at, expires_at FROM documents"
                    " WHERE role = ? AND target = ?",
                    (role, target),
                ).fetchone()
                if (
                    row is not None
                    and row[0] == digest
                    and row[4] - row[3] == ttl
                    and row[3] - 300 <= now < row[3] + ttl / 2
                ):
                    self.db.execute("COMMIT")
                    return Issue(row[2], row[1], row[3], row[4])
                (serial,) = self.db.execute(
                    "UPDATE counter SET serial = serial + 1 RETURNING serial"
                ).fetchone()
                first = row[1] if row is not None and row[0] == digest else serial
                issued = int(now)
                self.db.execute(
                    "INSERT OR REPLACE INTO documents VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (role, target, digest, first, serial, issued, issued + ttl),
                )
                self.db.execute(
                    "INSERT INTO issued VALUES (?, ?, ?, ?)", (serial, role, target, digest)
                )
                self.db.execute("COMMIT")
            except BaseException:
                self.db.execute("ROLLBACK")
                raise
        return Issue(serial, first, issued, issued + ttl)

    def current_serial(self, role: str, target: str) -> int | None:
        with self._lock:
            row = self.db.execute(
                "SELECT serial FROM documents WHERE role = ? AND target = ?", (role, target)
            ).fetchone()
        return None if row is None else int(row[0])

    def issued_for(self, serial: int) -> tuple[str, str, str] | None:
        with self._lock:
            row = self.db.execute(
                "SELECT role, target, digest FROM issued WHERE serial = ?", (serial,)
            ).fetchone()
        return None if row is None else (row[0], row[1], row[2])

    def add_report(self, report: dict[str, Any], body: bytes, sent: float, now: float) -> bool:
        return self.add_reports([NewReport(report, body, sent, now)])[0]

    def add_reports(self, batch: list[NewReport]) -> list[bool]:
        """Several reports in one transaction (one commit for a burst of agents)."""
        stored: list[bool] = []
        with self._lock:
            self.db.execute("BEGIN IMMEDIATE")
            try:
                for item in batch:
                    cur = self.db.execute(
                        "INSERT OR IGNORE INTO reports VALUES (?, ?, ?, ?, ?)",
                        (
                            item.report["report_id"],
                            item.report["instance_id"],
                            item.now,
                            item.sent,
                            item.body.decode(),
                        ),
                    )
                    stored.append(bool(cur.rowcount))
                    if cur.rowcount:  # a spooled, older report does not hide a newer one
                        self.db.execute(_UPSERT, _summary_row(item))
                self.db.execute("COMMIT")
            except BaseException:
                self.db.execute("ROLLBACK")
                raise
        return stored

    def instances(self) -> list[dict[str, Any]]:
        with self._lock:
            rows = self.db.execute(
                f"SELECT {_COLUMNS} FROM instances ORDER BY sent DESC, instance_id DESC"
            ).fetchall()
        return [_summary(r) for r in rows]

    def instance(self, instance_id: str, limit: int = 20) -> dict[str, Any] | None:
        with self._lock:
            row = self.db.execute(
                f"SELECT {_COLUMNS} FROM instances WHERE instance_id = ?", (instance_id,)
            ).fetchone()
            if row is None:
                return None
            reports = self.db.execute(
                "SELECT body, received_at FROM reports WHERE instance_id = ?"
                " ORDER BY sent DESC, received_at DESC LIMIT ?",
                (instance_id, limit),
            ).fetchall()
        return {
            "instance": _summary(row),
            "reports": [
                {"received_at": format_rfc3339(t), "report": json.loads(b)} for b, t in reports
            ],
        }

    def computer_name(self, instance_id: str) -> str | None:
        with self._lock:
            row = self.db.execute(
                "SELECT computer_name FROM instances WHERE instance_id = ?", (instance_id,)
            ).fetchone()
        return None if row is None or row[0] is None else str(row[0])

    def prune(self, now: float) -> int:
        """Drop reports older than the retention, but never an instance's latest one."""
        with self._lock:
            cur = self.db.execute(
                "DELETE FROM reports WHERE received_at < ? AND report_id NOT IN"
                " (SELECT report_id FROM instances)",
                (now - self.retention,),
            )
        return cur.rowcount

    def add_served(self, batch: list[Served]) -> None:
        with self._lock:
            self.db.execute("BEGIN IMMEDIATE")
            try:
                fleet.record_served(self.db, batch)
                self.db.execute("COMMIT")
            except BaseException:
                self.db.execute("ROLLBACK")
                raise

    def fleet(self, **query: Any) -> dict[str, Any]:
        with self._lock:
            return fleet.fleet_page(self.db, **query)

    def timeline(self, instance_id: str) -> dict[str, Any]:
        with self._lock:
            return fleet.instance_detail(self.db, instance_id)

    def add_nonce(
        self, nonce: str, instance_id: str, expires_at: float, now: float, cap: int
    ) -> NonceResult:
        with self._lock:
            self.db.execute("BEGIN IMMEDIATE")
            try:
                self.db.execute("DELETE FROM nonces WHERE expires_at <= ?", (now,))
                (held,) = self.db.execute(
                    "SELECT count(*) FROM nonces WHERE instance_id = ?", (instance_id,)
                ).fetchone()
                result: NonceResult = "full"
                if held < cap:
                    cur = self.db.execute(
                        "INSERT OR IGNORE INTO nonces VALUES (?, ?, ?)",
                        (nonce, instance_id, expires_at),
                    )
                    result = "stored" if cur.rowcount else "taken"
                self.db.execute("COMMIT")
            except BaseException:
                self.db.execute("ROLLBACK")
                raise
        return result

    def take_nonce(self, nonce: str, now: float) -> str | None:
        with self._lock:
            row = self.db.execute(
                "DELETE FROM nonces WHERE nonce = ? RETURNING instance_id, expires_at", (nonce,)
            ).fetchone()
        return None if row is None or row[1] <= now else str(row[0])

    def add_attestation(self, record: Attestation) -> Attestation:
        with self._lock:
            row = self.db.execute(
                "INSERT INTO attestations VALUES (?, ?, ?, ?, ?, ?, ?, ?, 1)"
                " ON CONFLICT (instance_id) DO UPDATE SET role = excluded.role,"
                " kind = excluded.kind, attested_id = excluded.attested_id,"
                " scope = excluded.scope, issued_at = excluded.issued_at,"
                " last_at = excluded.last_at, admitted = admitted + 1"
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
            ).fetchone()
        return replace(record, first_at=row[0], admitted=row[1])

    def attestation(self, instance_id: str) -> Attestation | None:
        with self._lock:
            row = self.db.execute(
                "SELECT instance_id, role, kind, attested_id, scope, issued_at, first_at,"
                " last_at, admitted FROM attestations WHERE instance_id = ?",
                (instance_id,),
            ).fetchone()
        return None if row is None else Attestation(*row)

    def close(self) -> None:
        with self._lock:
            self.db.close()


def _add_column(db: sqlite3.Connection, table: str, column: str, kind: str) -> None:
    """Add a column a newer vmprep needs to a store an older one created (idempotent)."""
    have = {r[1] for r in db.execute(f"PRAGMA table_info({table})")}
    if column not in have:
        db.execute(f"ALTER TABLE {table} ADD COLUMN {column} {kind}")


def _summary(row: tuple[Any, ...]) -> dict[str, Any]:
    return {
        "instance_id": row[0],
        "role": row[1],
        "computer_name": row[2],
        "agent_version": row[3],
        "config_serial": row[4],
        "state": row[5],
        "steps": {"done": row[6], "failed": row[7], "total": row[8]},
        "error": None if row[9] is None else json.loads(row[9]),
        "report_id": row[10],
        "sent_at": row[11],
        "received_at": format_rfc3339(row[12]),
        "inputs": None if row[14] is None else json.loads(row[14]),
    }
