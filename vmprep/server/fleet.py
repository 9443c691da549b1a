"""What the fleet dashboard shows, as queries over the SQLite store (issue 16).

- `served`: one row per (instance, serial) a document was served for, with the first and last
  time and how often; written by the report writer's thread in batches (`record_served`), so a
  config fetch never waits for the database.
- `fleet_page`: counts per role and state (from an index, not a table scan), and one page of
  instances filtered by role, state and an instance-id prefix, newest report first, with
  keyset pagination (the cursor is the last row's (sent, instance_id)): the cost of a refresh
  does not grow with the fleet. Instances that were served a document but never reported are
  the state `never_reported`.
- `instance_detail`: one instance's timeline (its reports: boot, state, step) and the
  documents it was served.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from vmprep.protocol.timestamps import format_rfc3339

SCHEMA = """
CREATE TABLE IF NOT EXISTS served (instance_id TEXT NOT NULL, serial INTEGER NOT NULL,
    role TEXT NOT NULL, first_at REAL NOT NULL, last_at REAL NOT NULL, times INTEGER NOT NULL,
    PRIMARY KEY (instance_id, serial));
CREATE INDEX IF NOT EXISTS served_by_role ON served (role, instance_id);
CREATE INDEX IF NOT EXISTS instances_by_state ON instances (state, sent, instance_id);
CREATE INDEX IF NOT EXISTS instances_by_role ON instances (role, state, sent, instance_id);
CREATE INDEX IF NOT EXISTS instances_by_sent ON instances (sent, instance_id);
"""
STATES = ("running", "done", "failed", "halted", "never_reported")
PAGE = 50
TAIL = 4096


class Rows(Protocol):
    def fetchall(self) -> list[Any]: ...

    def __iter__(self) -> Any: ...


class Db(Protocol):
    """What these queries need of a connection: sqlite3's, or the PostgreSQL store's adapter
    (vmprep.server.pgstore), which takes the same `?` placeholders. The SQL here is written
    for both engines (no engine-only function, every selected column grouped or aggregated),
    so the two stores answer the dashboard alike (tests/server/test_store_conformance.py)."""

    def execute(self, sql: str, args: Sequence[Any] = ..., /) -> Rows: ...

    def executemany(self, sql: str, args: Iterable[Sequence[Any]], /) -> Any: ...


@dataclass(frozen=True)
class Served:
    instance_id: str
    role: str
    serial: int
    at: float


RECORD_SERVED = (
    "INSERT INTO served VALUES (?, ?, ?, ?, ?, 1) ON CONFLICT (instance_id, serial) DO UPDATE"
    " SET last_at = CASE WHEN excluded.last_at > served.last_at THEN excluded.last_at"
    " ELSE served.last_at END, times = served.times + 1"
)


def record_served(db: Db, batch: list[Served]) -> None:
    """Inside the caller's transaction; in key order, so that two replicas' batches take
    their row locks in the same order (no deadlock)."""
    db.executemany(
        RECORD_SERVED,
        [
            (s.instance_id, s.serial, s.role, s.at, s.at)
            for s in sorted(batch, key=lambda s: (s.instance_id, s.serial))
        ],
    )


def _counts(db: Db) -> dict[str, dict[str, int]]:
    counts: dict[str, dict[str, int]] = {}
    for role, state, n in db.execute(
        "SELECT role, state, COUNT(*) FROM instances GROUP BY role, state"
    ):
        counts.setdefault(role, {})[state] = n
    for role, n in db.execute(
        "SELECT role, COUNT(DISTINCT instance_id) FROM served s WHERE NOT EXISTS"
        " (SELECT 1 FROM instances i WHERE i.instance_id = s.instance_id) GROUP BY role"
    ):
        counts.setdefault(role, {})["never_reported"] = n
    return dict(sorted(counts.items()))


def _where(role: str | None, state: str | None, prefix: str | None) -> tuple[str, list[Any]]:
    clauses: list[str] = []
    args: list[Any] = []
    if role:
        clauses.append("role = ?")
        args.append(role)
    if state:
        clauses.append("state = ?")
        args.append(state)
    if prefix:
        # A prefix range, not LIKE: ids hold '_' and '%' literally, and a range uses the key.
        clauses.append("instance_id >= ? AND instance_id < ?")
        args += [prefix, prefix + "\U0010ffff"]
    return " AND ".join(clauses), args


def fleet_page(
    db: Db,
    *,
    role: str | None = None,
    state: str | None = None,
    prefix: str | None = None,
    after: tuple[float, str] | None = None,
    limit: int = PAGE,
) -> dict[str, Any]:
    limit = max(1, min(limit, 500))
    if state == "never_reported":
        rows, cursor = _never_reported(db, role, prefix, after, limit)
    else:
        where, args = _where(role, state, prefix)
        if after is not None:
            where = (where + " AND " if where else "") + "(sent, instance_id) < (?, ?)"
            args += [after[0], after[1]]
        found = db.execute(
            "SELECT instance_id, role, computer_name, config_serial, state, steps_done,"
            " steps_failed, steps_total, error, report_id, sent_at, received_at, sent"
            f" FROM instances {'WHERE ' + where if where else ''}"
            " ORDER BY sent DESC, instance_id DESC LIMIT ?",
            [*args, limit + 1],
        ).fetchall()
        more = len(found) > limit
        found = found[:limit]
        bodies = _bodies(db, [r[9] for r in found])
        rows = [_row(r, bodies.get(r[9])) for r in found]
        cursor = f"{found[-1][12]!r}|{found[-1][0]}" if more else None
    return {"counts": _counts(db), "instances": rows, "next": cursor}


def _never_reported(
    db: Db,
    role: str | None,
    prefix: str | None,
    after: tuple[float, str] | None,
    limit: int,
) -> tuple[list[dict[str, Any]], str | None]:
    where, args = _where(role, None, prefix)
    clauses = [where] if where else []
    clauses.append("NOT EXISTS (SELECT 1 FROM instances i WHERE i.instance_id = s.instance_id)")
    having = ""
    hargs: list[Any] = []
    if after is not None:
        having = " HAVING (max(last_at), instance_id) < (?, ?)"
        hargs = [after[0], after[1]]
    found = db.execute(
        "SELECT instance_id, max(role), max(serial), max(last_at) FROM served s"
        f" WHERE {' AND '.join(clauses)} GROUP BY instance_id{having}"
        " ORDER BY max(last_at) DESC, instance_id DESC LIMIT ?",
        [*args, *hargs, limit + 1],
    ).fetchall()
    more = len(found) > limit
    found = found[:limit]
    rows = [
        {
            "instance_id": iid,
            "role": r,
            "state": "never_reported",
            "config_serial": serial,
            "last_fetch": format_rfc3339(last),
        }
        for iid, r, serial, last in found
    ]
    return rows, (f"{found[-1][3]!r}|{found[-1][0]}" if more else None)


def parse_cursor(text: str | None) -> tuple[float, str] | None:
    if not text:
        return None
    sent, sep, instance_id = text.partition("|")
    try:
        return (float(sent), instance_id) if sep else None
    except ValueError:
        return None


def _bodies(db: Db, report_ids: list[str]) -> dict[str, dict[str, Any]]:
    if not report_ids:
        return {}
    marks = ",".join("?" * len(report_ids))
    found = db.execute(
        f"SELECT report_id, body FROM reports WHERE report_id IN ({marks})", report_ids
    ).fetchall()
    return {rid: json.loads(body) for rid, body in found}


def current_step(report: dict[str, Any] | None) -> dict[str, Any] | None:
    """The step an instance is on (running), or the one that failed it, from its report."""
    if not report:
        return None
    steps = report.get("steps") or []
    for wanted in ("running", "failed", "interrupted"):
        for step in steps:
            if isinstance(step, dict) and step.get("status") == wanted:
                tail = str(step.get("output_tail") or "")[-TAIL:]
                return {
                    "id": step.get("id"),
                    "status": wanted,
                    "exit_code": step.get("exit_code"),
                    "output_tail": tail,
                }
    return None


def _row(r: tuple[Any, ...], report: dict[str, Any] | None) -> dict[str, Any]:
    return {
        "instance_id": r[0],
        "role": r[1],
        "computer_name": r[2],
        "config_serial": r[3],
        "state": r[4],
        "steps": {"done": r[5], "failed": r[6], "total": r[7]},
        "error": None if r[8] is None else json.loads(r[8]),
        "sent_at": r[10],
        "received_at": format_rfc3339(r[11]),
        "step": current_step(report),
    }


def instance_detail(db: Db, instance_id: str, limit: int = 200) -> dict[str, Any]:
    timeline = [
        {
            "received_at": format_rfc3339(received),
            "sent_at": report.get("sent_at"),
            "boot": report.get("boot"),
            "state": report.get("state"),
            "config_serial": report.get("config_serial"),
            "step": current_step(report),
            "error": report.get("error"),
        }
        for received, report in (
            (t, json.loads(b))
            for b, t in db.execute(
                "SELECT body, received_at FROM reports WHERE instance_id = ?"
                " ORDER BY sent DESC, received_at DESC LIMIT ?",
                (instance_id, limit),
            )
        )
    ]
    served = [
        {
            "serial": s,
            "role": r,
            "first_at": format_rfc3339(f),
            "last_at": format_rfc3339(la),
            "times": n,
        }
        for s, r, f, la, n in db.execute(
            "SELECT serial, role, first_at, last_at, times FROM served WHERE instance_id = ?"
            " ORDER BY serial DESC LIMIT ?",
            (instance_id, limit),
        )
    ]
    return {"instance_id": instance_id, "timeline": timeline, "served": served}
