"""docs/openapi.json describes the app: the same routes and methods, and every status code it
documents is one a request in this test gets (and no request gets an undocumented one)."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pytest
from starlette.routing import Route

from tests.server.conftest import AppClient, write_repo
from vmprep.server.app import _routes, create_app
from vmprep.server.keys import generate
from vmprep.server.service import Service, Tokens, hash_token
from vmprep.server.store import SqliteStore

OPENAPI = json.loads((Path(__file__).parents[2] / "docs" / "openapi.json").read_text())
FLEET, ADMIN = {"Authorization": "Bearer f"}, {"Authorization": "Bearer a"}
WRONG = {"Authorization": "Bearer wrong"}


def documented() -> set[tuple[str, str, int]]:
    return {
        (path, method.upper(), int(code))
        for path, item in OPENAPI["paths"].items()
        for method, op in item.items()
        for code in op["responses"]
    }


def test_the_documented_paths_and_methods_are_the_apps_routes():
    routes = {
        (r.path, m)
        for r in _routes()
        if isinstance(r, Route)
        for m in (r.methods or ())
        if m != "HEAD"
    }
    assert {(p, m) for p, m, _ in documented()} == routes


def _report(instance_id: str) -> dict[str, Any]:
    return {
        "apiVersion": "vmprep/v1",
        "kind": "StatusReport",
        "report_id": str(uuid.uuid4()),
        "instance_id": instance_id,
        "role": "sql",
        "agent_version": "0.1.0",
        "state": "done",
        "sent_at": "2026-11-25T10:00:00Z",
        "steps": [],
    }


def _service(tmp_path, store, **options) -> Service:
    return Service(
        write_repo(tmp_path / "c", sql=True),
        store,
        [generate()],
        Tokens((hash_token("f"),), (hash_token("a"),)),
        **options,
    )


@pytest.fixture
def clients(tmp_path, monkeypatch):
    monkeypatch.setenv("TEST_JOIN_USER", "u")
    store = SqliteStore(tmp_path / "d")
    app = create_app(_service(tmp_path, store))
    yield AppClient(app, client=("127.0.0.1", 9)), AppClient(app, client=("192.0.2.1", 9))
    store.close()


@pytest.fixture
def down(tmp_path, monkeypatch, postgres):
    """A client of a service whose PostgreSQL database is unreachable (503s)."""
    from vmprep.server.pgstore import PostgresStore

    monkeypatch.setenv("TEST_JOIN_USER", "u")
    url = postgres.migrated_database()
    store = PostgresStore(url, timeout=0.3)
    app = create_app(_service(tmp_path, store))
    postgres.refuse_connections(url)
    yield AppClient(app, client=("127.0.0.1", 9))
    store.close()


@pytest.fixture
def reports_only(tmp_path, monkeypatch):
    monkeypatch.setenv("TEST_JOIN_USER", "u")
    store = SqliteStore(tmp_path / "r")
    yield AppClient(create_app(_service(tmp_path, store, reports_only=True)))
    store.close()


def test_every_documented_status_code_happens_and_nothing_else(clients, down, reports_only):
    local, remote = clients
    config, report = "/v1/config/{role}/{instance_id}", "/v1/report/{instance_id}"
    instances, instance = "/v1/instances", "/v1/instances/{instance_id}"
    fleet, timeline = "/v1/fleet", "/v1/instances/{instance_id}/timeline"
    challenge = "/v1/attestation/challenge"
    serial = local.get("/v1/config/web/i-1", headers=FLEET).json()["serial"]
    big = {**_report("i-1"), "steps": [{"id": "a", "status": "done", "x": "y" * 2**20}]}
    cases = [
        (config, local.get("/v1/config/web/i-1", headers=FLEET)),
        (config, local.get("/v1/config/none/i-1", headers=FLEET)),
        (
            config,
            local.get("/v1/config/web/i-1", headers={**FLEET, "Vmprep-Last-Serial": str(serial)}),
        ),
        (config, local.get("/v1/config/web/a.sig", headers=FLEET)),
        (config, local.get("/v1/config/web/i-1")),
        (config, local.get("/v1/config/web/i-1", headers=WRONG)),
        (config, remote.get("/v1/config/sql/i-1", headers=FLEET)),
        (config, local.get("/v1/config/web/i-1", headers={**FLEET, "Vmprep-Secrets": "x"})),
        (report, local.post("/v1/report/i-1", json=_report("i-1"), headers=FLEET)),
        (report, local.post("/v1/report/i-1", json=_report("i-2"), headers=FLEET)),
        (report, local.post("/v1/report/i-1", json=_report("i-1"))),
        (report, local.post("/v1/report/i-1", json=_report("i-1"), headers=WRONG)),
        (report, local.post("/v1/report/i-1", json=big, headers=FLEET)),
        (instances, local.get("/v1/instances", headers=ADMIN)),
        (instances, local.get("/v1/instances")),
        (instances, local.get("/v1/instances", headers=FLEET)),
        (instance, local.get("/v1/instances/i-1", headers=ADMIN)),
        (instance, local.get("/v1/instances/a.sig", headers=ADMIN)),
        (instance, local.get("/v1/instances/i-1")),
        (instance, local.get("/v1/instances/i-1", headers=FLEET)),
        (instance, local.get("/v1/instances/i-9", headers=ADMIN)),
        (challenge, local.post(challenge, json={"instance_id": "i-1"}, headers=FLEET)),
        (challenge, local.post(challenge, json={"instance_id": "_x"}, headers=FLEET)),
        (challenge, local.post(challenge, json={"instance_id": "i-1"})),
        (challenge, local.post(challenge, json={"instance_id": "i-1"}, headers=WRONG)),
        (challenge, local.post(challenge, content=b"x" * 2048, headers=FLEET)),
        *[
            (challenge, local.post(challenge, json={"instance_id": "i-2"}, headers=FLEET))
            for _ in range(6)
        ],
        ("/healthz", local.get("/healthz")),
        (fleet, local.get("/v1/fleet", headers=ADMIN)),
        (fleet, local.get("/v1/fleet?state=sleeping", headers=ADMIN)),
        (fleet, local.get("/v1/fleet")),
        (fleet, local.get("/v1/fleet", headers=FLEET)),
        (timeline, local.get("/v1/instances/i-1/timeline", headers=ADMIN)),
        (timeline, local.get("/v1/instances/a.sig/timeline", headers=ADMIN)),
        (timeline, local.get("/v1/instances/i-1/timeline")),
        (timeline, local.get("/v1/instances/i-1/timeline", headers=FLEET)),
        (timeline, local.get("/v1/instances/i-9/timeline", headers=ADMIN)),
        ("/dashboard", local.get("/dashboard")),
        ("/dashboard/{name}", local.get("/dashboard/dashboard.js")),
        ("/dashboard/{name}", local.get("/dashboard/secrets.txt")),
        ("/readyz", local.get("/readyz")),
        ("/readyz", down.get("/readyz")),
        (config, down.get("/v1/config/web/i-1", headers=FLEET)),
        (config, reports_only.get("/v1/config/web/i-1", headers=FLEET)),
        (report, down.post("/v1/report/i-1", json=_report("i-1"), headers=FLEET)),
        (instances, down.get("/v1/instances", headers=ADMIN)),
        (instance, down.get("/v1/instances/i-1", headers=ADMIN)),
        (fleet, down.get("/v1/fleet", headers=ADMIN)),
        (timeline, down.get("/v1/instances/i-1/timeline", headers=ADMIN)),
    ]
    seen = {(path, r.request.method, r.status_code) for path, r in cases}
    assert seen == documented()
    for path, r in cases:
        if r.status_code >= 400 and path not in ("/readyz", "/dashboard", "/dashboard/{name}"):
            assert set(r.json()) == {"error"}
        if r.status_code == 503:
            assert r.headers["Retry-After"] == "5"
    refused = reports_only.get("/v1/config/web/i-1", headers=FLEET)
    assert refused.headers["Vmprep-Error"] == "reports-only"


def test_the_documented_name_patterns_are_the_apps():
    from vmprep.server.app import NAME

    for path, item in OPENAPI["paths"].items():
        for op in item.values():
            for param in op.get("parameters", []):
                if param["in"] != "path" or path.startswith("/dashboard/"):
                    continue
                expected = NAME.pattern
                if path.startswith("/v1/config/") and param["name"] == "instance_id":
                    expected = "^(_role|" + NAME.pattern[1:-1] + ")$"
                assert param["schema"]["pattern"] == expected, (path, param["name"])
