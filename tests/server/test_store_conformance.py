"""One suite for both stores (issue 17): SQLite and PostgreSQL must give the same answers.

`store` runs each test against each implementation; `test_both_stores_answer_alike` replays
one generated history of issues, reports and served documents into both and compares every
answer the service and the dashboard read."""

from __future__ import annotations

import json
import threading
import uuid
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vmprep.server.fleet import Served
from vmprep.server.store import NewReport, SqliteStore, Store

DAY = 86400.0


def report(
    instance_id: str = "i-1",
    state: str = "done",
    sent: float = 100.0,
    now: float | None = None,
    report_id: str | None = None,
    **extra: Any,
) -> NewReport:
    body = {
        "apiVersion": "vmprep/v1",
        "kind": "StatusReport",
        "report_id": report_id or str(uuid.uuid4()),
        "instance_id": instance_id,
        "role": extra.pop("role", "web"),
        "agent_version": "0.1.0",
        "config_serial": extra.pop("config_serial", 7),
        "state": state,
        "sent_at": "2027-01-01T00:00:00Z",
        "steps": extra.pop("steps", [{"id": "a", "status": "done"}]),
        **extra,
    }
    return NewReport(body, json.dumps(body).encode(), sent, sent if now is None else now)


def open_store(kind: str, tmp_path, request, **kwargs: Any):
    if kind == "sqlite":
        return SqliteStore(tmp_path / f"data-{uuid.uuid4().hex[:8]}", **kwargs)
    from vmprep.server.pgstore import PostgresStore

    cluster = request.getfixturevalue("postgres")
    return PostgresStore(cluster.migrated_database(), **kwargs)


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request, tmp_path):
    s = open_store(request.param, tmp_path, request)
    yield s
    s.close()


def test_a_repeated_report_id_is_stored_once_and_the_first_body_wins(store):
    first = report(state="running", report_id="r-1")
    assert store.add_reports([first]) == [True]
    again = report(state="failed", report_id="r-1", sent=101.0)
    assert store.add_reports([again]) == [False]
    assert store.instances()[0]["state"] == "running"
    (stored,) = store.instance("i-1")["reports"]
    assert stored["report"]["state"] == "running"


def test_the_same_report_id_twice_in_one_batch_is_stored_once(store):
    a, b = report(report_id="same"), report(report_id="same", state="failed")
    assert store.add_reports([report("i-2"), a, b]) == [True, True, False]
    assert {i["instance_id"]: i["state"] for i in store.instances()} == {
        "i-1": "done",
        "i-2": "done",
    }


def test_a_spooled_older_report_does_not_hide_the_newer_state(store):
    store.add_reports([report(state="done", sent=200.0)])
    store.add_reports([report(state="running", sent=100.0, now=300.0)])
    (summary,) = store.instances()
    assert summary["state"] == "done"
    assert len(store.instance("i-1")["reports"]) == 2


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_prune_keeps_ids_a_day_and_each_instances_latest(kind, request, tmp_path):
    store = open_store(kind, tmp_path, request, retention=60)
    try:
        store.add_reports([report("i-1", sent=0.0)])
        store.add_reports([report("i-1", sent=10.0)])
        store.add_reports([report("i-2", sent=5.0)])
        assert store.prune(DAY - 1) == 0
        assert store.prune(DAY + 20) == 1
        assert len(store.instance("i-1")["reports"]) == 1
        assert len(store.instance("i-2")["reports"]) == 1
    finally:
        store.close()


def test_issues_are_kept_per_target_under_one_counter(store):
    a = store.issue("web", "_role", "d1", 3600, 1000.0)
    assert a.serial == a.first_serial == 1
    assert store.issue("web", "_role", "d1", 3600, 2000.0) == a
    b = store.issue("web", "i-1", "d2", 3600, 2000.0)
    assert b.serial == a.serial + 1
    c = store.issue("web", "_role", "d1", 3600, 1000.0 + 1800)  # half the ttl used: re-issued
    assert (c.serial, c.first_serial) == (b.serial + 1, a.serial)
    d = store.issue("web", "_role", "d9", 3600, 3000.0)  # new content: a new first serial
    assert (d.serial, d.first_serial) == (c.serial + 1, d.serial)
    assert store.issued_for(b.serial) == ("web", "i-1", "d2")
    assert store.issued_for(999) is None
    assert store.current_serial("web", "_role") == d.serial
    assert store.current_serial("web", "i-1") == b.serial
    assert store.current_serial("web", "i-2") is None


def test_concurrent_first_issues_of_one_target_agree(store):
    results: list[Any] = []

    def issue() -> None:
        results.append(store.issue("web", "i-9", "d", 3600, 5000.0))

    threads = [threading.Thread(target=issue) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len({r.serial for r in results}) == 1


def test_computer_name_is_the_last_reported_one(store):
    assert store.computer_name("i-1") is None
    store.add_reports([report(computer_name="WEB-EU-1")])
    assert store.computer_name("i-1") == "WEB-EU-1"
    store.add_reports([report("i-2")])  # none reported
    assert store.computer_name("i-2") is None


def test_the_dashboard_reads_counts_pages_and_timelines(store):
    store.add_reports(
        [
            report(f"i-{n:03d}", ("done", "running", "failed")[n % 3], sent=1000.0 + n)
            for n in range(30)
        ]
    )
    store.add_served([Served("never-1", "web", 3, 50.0), Served("i-001", "web", 4, 60.0)])
    store.add_served([Served("never-1", "web", 3, 70.0)])
    page = store.fleet(limit=7)
    assert page["counts"] == {"web": {"done": 10, "running": 10, "failed": 10, "never_reported": 1}}
    assert [r["instance_id"] for r in page["instances"]] == [
        f"i-{n:03d}" for n in range(29, 22, -1)
    ]
    rest = store.fleet(after=(1022.0, "i-022"), limit=500)
    assert len(rest["instances"]) == 22
    assert rest["next"] is None
    never = store.fleet(state="never_reported")["instances"]
    assert never == [
        {
            "instance_id": "never-1",
            "role": "web",
            "state": "never_reported",
            "config_serial": 3,
            "last_fetch": "1970-01-01T00:01:10Z",
        }
    ]
    assert [r["instance_id"] for r in store.fleet(prefix="i-01")["instances"]][:2] == [
        "i-019",
        "i-018",
    ]
    served = store.timeline("never-1")["served"]
    assert served[0]["times"] == 2
    assert served[0]["first_at"] == "1970-01-01T00:00:50Z"


def test_ping_answers(store):
    store.ping()


_ids = st.sampled_from(["a", "b", "c", "a_%", "ü-1", "Z"])
_ops = st.lists(
    st.one_of(
        st.tuples(
            st.just("report"),
            _ids,
            st.sampled_from(["r1", "r2", "r3", "r4", "r5", "r6"]),
            st.sampled_from(["running", "done", "failed", "halted"]),
            st.integers(0, 5).map(float),
        ),
        st.tuples(st.just("issue"), _ids, st.sampled_from(["d1", "d2"]), st.integers(0, 4000)),
        st.tuples(st.just("served"), _ids, st.integers(1, 4), st.integers(0, 9).map(float)),
    ),
    max_size=25,
)


@pytest.mark.slow
@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(ops=_ops)
def test_both_stores_answer_alike(request, tmp_path, ops):
    from vmprep.server.pgstore import PostgresStore

    lite = SqliteStore(tmp_path / f"d-{uuid.uuid4().hex[:8]}")
    pg = PostgresStore(request.getfixturevalue("postgres").migrated_database())
    try:
        now = 10_000.0
        answers: dict[str, list[Any]] = {"sqlite": [], "pg": []}
        for op in ops:
            now += 1
            for name, s in (("sqlite", lite), ("pg", pg)):
                if op[0] == "report":
                    _, iid, rid, state, sent = op
                    got: Any = s.add_reports([report(iid, state, sent, now, report_id=rid)])
                elif op[0] == "issue":
                    _, iid, digest, at = op
                    got = s.issue("web", iid, digest, 3600, float(at))
                else:
                    _, iid, serial, at = op
                    got = s.add_served([Served(iid, "web", serial, at)])
                answers[name].append(got)
        assert answers["sqlite"] == answers["pg"]
        for s in (lite, pg):
            answers["sqlite" if s is lite else "pg"] = [
                s.instances(),
                [s.instance(i) for i in ("a", "b", "c", "a_%", "ü-1", "Z", "none")],
                [s.computer_name(i) for i in ("a", "none")],
                s.fleet(),
                s.fleet(limit=1),
                s.fleet(state="never_reported"),
                s.fleet(prefix="a"),
                s.fleet(role="web", state="done"),
                [s.timeline(i) for i in ("a", "ü-1")],
                [s.issued_for(n) for n in range(30)],
                [s.current_serial("web", i) for i in ("a", "b", "none")],
            ]
        assert answers["sqlite"] == answers["pg"]
    finally:
        lite.close()
        pg.close()


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_a_nonce_presented_to_two_processes_at_once_is_taken_once(kind, request, tmp_path):
    """Two stores on one database, as replicas or --workers have, race for one nonce."""
    store: Store
    other: Store
    if kind == "sqlite":
        store, other = SqliteStore(tmp_path / "d"), SqliteStore(tmp_path / "d")
    else:
        from vmprep.server.pgstore import PostgresStore

        url = request.getfixturevalue("postgres").migrated_database()
        store, other = PostgresStore(url), PostgresStore(url)
    try:
        for n in range(20):
            nonce = f"{n:010d}"
            assert store.add_nonce(nonce, "vm-1", 1300.0, 1000.0, 50) == "stored"
            got: list[str | None] = []
            threads = [
                threading.Thread(
                    target=lambda s=s, g=got, n=nonce: g.append(s.take_nonce(n, 1100.0))
                )
                for s in (store, other, store, other)
            ]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            assert got.count("vm-1") == 1
            assert got.count(None) == 3
        # the per-instance cap holds when challenges arrive at both at once
        results: list[str] = []
        threads = [
            threading.Thread(
                target=lambda s=s, n=n: results.append(
                    s.add_nonce(f"9{n:09d}", "vm-2", 1300.0, 1000.0, 5)
                )
            )
            for n, s in enumerate([store, other] * 8)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert results.count("stored") == 5
        assert results.count("full") == 11
    finally:
        store.close()
        other.close()
