"""The fleet dashboard's data (issue 16): counts, filters, keyset pages, never-reported
instances, timelines and the documents served, from the real SQLite store."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import pytest

from tests.server.conftest import AppClient, write_repo
from vmprep.server.app import create_app
from vmprep.server.fleet import Served, parse_cursor
from vmprep.server.keys import generate
from vmprep.server.service import Service, Tokens, hash_token
from vmprep.server.store import NewReport, SqliteStore

ADMIN = {"Authorization": "Bearer a"}
FLEET = {"Authorization": "Bearer f"}


def report(instance_id: str, role: str, state: str, sent: float, **extra: Any) -> NewReport:
    steps = extra.pop("steps", [{"id": "a", "status": "done"}])
    body = {
        "apiVersion": "vmprep/v1",
        "kind": "StatusReport",
        "report_id": str(uuid.uuid4()),
        "instance_id": instance_id,
        "role": role,
        "agent_version": "0.1.0",
        "state": state,
        "boot": extra.pop("boot", 1),
        "sent_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(sent)),
        "steps": steps,
        "error": extra.pop("error", None),
        **extra,
    }
    return NewReport(body, json.dumps(body).encode(), sent, sent + 0.5)


@pytest.fixture
def store(tmp_path):
    s = SqliteStore(tmp_path / "data")
    yield s
    s.close()


def seed(store: SqliteStore, n: int = 120) -> None:
    batch = []
    for i in range(n):
        role = ("web", "sql", "app")[i % 3]
        state = ("done", "running", "failed", "halted")[i % 4]
        steps: list[dict[str, Any]] = [{"id": "a", "status": "done"}]
        if state == "failed":
            steps.append({"id": "join", "status": "failed", "exit_code": 1, "output_tail": "no DC"})
        if state == "running":
            steps.append({"id": "iis", "status": "running"})
        batch.append(report(f"i-{i:04d}", role, state, 1_800_000_000 + i, steps=steps))
    store.add_reports(batch)


def test_counts_per_role_and_state(store):
    seed(store, 120)
    store.add_served([Served("i-new", "web", 7, 1_800_000_500.0)])
    counts = store.fleet()["counts"]
    assert sum(sum(v.values()) for v in counts.values()) == 121
    assert counts["web"]["never_reported"] == 1
    assert counts["sql"] == {"done": 10, "running": 10, "failed": 10, "halted": 10}


@pytest.mark.parametrize("limit", [1, 7, 50, 500])
def test_pages_cover_every_instance_once_newest_first(store, limit):
    seed(store, 120)
    seen: list[str] = []
    after = None
    while True:
        page = store.fleet(after=after, limit=limit)
        seen += [r["instance_id"] for r in page["instances"]]
        if page["next"] is None:
            break
        after = parse_cursor(page["next"])
    assert seen == [f"i-{i:04d}" for i in reversed(range(120))]


def test_filters_and_the_step_an_instance_is_on(store):
    seed(store, 120)
    page = store.fleet(role="sql", state="failed", limit=500)
    assert {r["role"] for r in page["instances"]} == {"sql"}
    assert len(page["instances"]) == 10
    step = page["instances"][0]["step"]
    assert step == {"id": "join", "status": "failed", "exit_code": 1, "output_tail": "no DC"}
    running = store.fleet(state="running", limit=1)["instances"][0]
    assert running["step"]["id"] == "iis"


def test_the_search_is_a_literal_prefix(store):
    store.add_reports([report("web_1", "web", "done", 1.0), report("webx1", "web", "done", 2.0)])
    found = [r["instance_id"] for r in store.fleet(prefix="web_")["instances"]]
    assert found == ["web_1"]  # '_' is not a wildcard


def test_never_reported_instances_are_those_served_but_silent(store):
    store.add_reports([report("i-1", "web", "done", 10.0)])
    store.add_served(
        [
            Served("i-1", "web", 3, 5.0),
            Served("i-2", "web", 3, 6.0),
            Served("i-2", "web", 4, 9.0),
            Served("i-3", "sql", 4, 8.0),
        ]
    )
    page = store.fleet(state="never_reported")
    assert [(r["instance_id"], r["config_serial"]) for r in page["instances"]] == [
        ("i-2", 4),
        ("i-3", 4),
    ]
    first = store.fleet(state="never_reported", limit=1)
    second = store.fleet(state="never_reported", limit=1, after=parse_cursor(first["next"]))
    assert [r["instance_id"] for r in second["instances"]] == ["i-3"]


def test_timeline_and_documents_served(store):
    store.add_reports(
        [
            report("i-1", "web", "running", 10.0, boot=1),
            report("i-1", "web", "running", 20.0, boot=2),
            report("i-1", "web", "done", 30.0, boot=2),
        ]
    )
    store.add_served([Served("i-1", "web", 3, 5.0), Served("i-1", "web", 3, 15.0)])
    view = store.timeline("i-1")
    assert [(t["boot"], t["state"]) for t in view["timeline"]] == [
        (2, "done"),
        (2, "running"),
        (1, "running"),
    ]
    assert view["served"] == [
        {
            "serial": 3,
            "role": "web",
            "first_at": "1970-01-01T00:00:05Z",
            "last_at": "1970-01-01T00:00:15Z",
            "times": 2,
        }
    ]


@pytest.fixture
def client(tmp_path, monkeypatch):
    monkeypatch.setenv("TEST_JOIN_USER", "u")
    store = SqliteStore(tmp_path / "d")
    tokens = Tokens((hash_token("f"),), (hash_token("a"),))
    svc = Service(write_repo(tmp_path / "c", sql=True), store, [generate()], tokens)
    yield AppClient(create_app(svc), client=("127.0.0.1", 9)), store
    store.close()


def test_a_fetch_is_recorded_as_served_without_waiting_for_the_store(client):
    app, store = client
    serial = app.get("/v1/config/web/i-7", headers=FLEET).json()["serial"]
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not store.timeline("i-7")["served"]:
        time.sleep(0.05)  # the writer thread records it in the background
    assert store.timeline("i-7")["served"][0]["serial"] == serial
    page = app.get("/v1/fleet?state=never_reported", headers=ADMIN).json()
    assert [r["instance_id"] for r in page["instances"]] == ["i-7"]


def test_the_page_is_static_and_locked_down(client):
    app, _ = client
    r = app.get("/dashboard")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/html")
    assert "script-src 'self'" in r.headers["content-security-policy"]
    assert "i-" not in r.text  # no data without the token
    assert app.get("/dashboard/dashboard.js").headers["content-type"].startswith("text/javascript")
    assert app.get("/dashboard/../store.py").status_code == 404


@pytest.mark.parametrize("query", ["state=sleeping", "limit=x", "after=garbage"])
def test_bad_queries_are_400(client, query):
    app, _ = client
    assert app.get(f"/v1/fleet?{query}", headers=ADMIN).status_code == 400
