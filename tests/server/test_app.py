from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.server.conftest import AppClient, verify, write_repo
from vmprep.server.app import create_app
from vmprep.server.keys import generate
from vmprep.server.service import Service, Tokens, hash_token
from vmprep.server.store import SqliteStore

FLEET, ADMIN = "fleet-token-1", "admin-token-1"
AUTH = {"Authorization": f"Bearer {FLEET}"}
ADMIN_AUTH = {"Authorization": f"Bearer {ADMIN}"}


@pytest.fixture
def service(tmp_path, monkeypatch):
    monkeypatch.setenv("TEST_JOIN_USER", "joiner")
    store = SqliteStore(tmp_path / "data")
    tokens = Tokens((hash_token(FLEET),), (hash_token(ADMIN),))
    svc = Service(write_repo(tmp_path / "configs", sql=True), store, [generate()], tokens)
    yield svc
    store.close()


@pytest.fixture
def client(service):
    return AppClient(create_app(service))


def report(instance_id: str = "i-1", **fields: Any) -> dict[str, Any]:
    body = {
        "apiVersion": "vmprep/v1",
        "kind": "StatusReport",
        "report_id": str(uuid.uuid4()),
        "instance_id": instance_id,
        "role": "web",
        "computer_name": "WEB-1",
        "agent_version": "0.1.0",
        "config_serial": 3,
        "state": "done",
        "boot": 1,
        "sent_at": "2026-11-25T10:03:12Z",
        "steps": [
            {"id": "iis", "source": "remote", "status": "done", "attempts": 1},
            {"id": "x", "source": "baked", "status": "failed", "attempts": 2},
        ],
        "error": None,
    }
    body.update(fields)
    return body


def test_a_config_is_signed_over_the_exact_body(client, service):
    r = client.get("/v1/config/web/i-1", headers=AUTH)
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/json"
    assert verify(r.headers["vmprep-signature"], r.content, service.keys[0])
    assert json.loads(r.content)["target"] == {"role": "web"}


def test_304_only_for_the_current_serial_and_404_unknown_role_for_an_unknown_role(client):
    serial = client.get("/v1/config/web/i-1", headers=AUTH).json()["serial"]
    r = client.get("/v1/config/web/i-1", headers={**AUTH, "Vmprep-Last-Serial": str(serial)})
    assert r.status_code == 304
    assert r.content == b""
    r = client.get("/v1/config/web/i-1", headers={**AUTH, "Vmprep-Last-Serial": str(serial - 1)})
    assert r.status_code == 200
    r = client.get("/v1/config/web/i-1", headers={**AUTH, "Vmprep-Last-Serial": "x"})
    assert r.status_code == 400
    assert "Vmprep-Last-Serial" in r.json()["error"]
    for target in ("i-1", "_role"):  # never 204: the agent would finish without its config
        r = client.get(f"/v1/config/nothing-here/{target}", headers=AUTH)
        assert r.status_code == 404
        assert r.headers["vmprep-error"] == "unknown-role"
        assert r.json() == {"error": "this service knows no role 'nothing-here'"}


def test_the_role_wide_document_is_served_at_role_too(client):
    r = client.get("/v1/config/web/_role", headers=AUTH)
    assert r.status_code == 200
    assert r.json()["target"] == {"role": "web"}
    assert client.get("/v1/config/web/_other", headers=AUTH).status_code == 400


@pytest.mark.parametrize(
    "path", ["/v1/config/web/a.sig", "/v1/config/w%20b/i-1", "/v1/config/web/-x"]
)
def test_invalid_names_are_400_with_a_json_error(client, path):
    r = client.get(path, headers=AUTH)
    assert r.status_code == 400
    assert "invalid" in r.json()["error"]


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/v1/config/_web/i-1"),
        ("GET", "/v1/config/_role/_role"),
        ("POST", "/v1/report/_role"),
        ("POST", "/v1/report/_i-1"),
    ],
)
def test_names_starting_with_an_underscore_are_reserved(client, method, path):
    instance_id = path.rsplit("/", 1)[1]
    r = client.request(method, path, headers=AUTH, json=report(instance_id))
    assert r.status_code == 400
    assert "reserved" in r.json()["error"]


def test_mac_and_computer_name_come_from_the_query_or_the_last_report(client):
    r = client.get("/v1/config/web/i-7?mac=00:15:5D:01:02:03", headers=AUTH)
    assert r.json()["steps"][-1]["id"] == "by-mac"
    r = client.get("/v1/config/web/i-8?computer_name=WEB-EU-2", headers=AUTH)
    assert r.json()["steps"][-1]["id"] == "by-name"
    assert client.get("/v1/config/web/i-9", headers=AUTH).json()["target"] == {"role": "web"}
    rep = report("i-9", computer_name="web-eu-9")
    assert client.post("/v1/report/i-9", json=rep, headers=AUTH).status_code == 202
    assert client.get("/v1/config/web/i-9", headers=AUTH).json()["steps"][-1]["id"] == "by-name"


def test_secrets_go_only_over_tls_or_to_a_loopback_client(service):
    app = create_app(service)
    c = AppClient(app, client=("192.0.2.7", 5000))
    r = c.get("/v1/config/sql/db-1", headers=AUTH)
    assert r.status_code == 403
    assert "TLS" in r.json()["error"]
    assert c.get("/v1/config/web/db-1", headers=AUTH).status_code == 200  # no secrets
    c = AppClient(app, base_url="https://cfg.example", client=("192.0.2.7", 5000))
    assert c.get("/v1/config/sql/db-1", headers=AUTH).json()["secrets"]["join_user"] == "joiner"
    c = AppClient(app, client=("127.0.0.1", 5000))
    assert c.get("/v1/config/sql/db-1", headers=AUTH).status_code == 200
    c = AppClient(app, client=("::1", 5000))
    assert c.get("/v1/config/sql/db-1", headers=AUTH).status_code == 200


def test_tokens_401_without_403_with_a_wrong_one(client):
    r = client.get("/v1/config/web/i-1")
    assert r.status_code == 401
    assert r.headers["www-authenticate"] == "Bearer"
    assert (
        client.get("/v1/config/web/i-1", headers={"Authorization": "Bearer nope"}).status_code
        == 403
    )
    assert client.post("/v1/report/i-1", json=report()).status_code == 401
    assert client.get("/v1/instances", headers=AUTH).status_code == 403  # fleet is not admin
    assert client.get("/v1/instances").status_code == 401
    assert client.get("/v1/instances", headers=ADMIN_AUTH).status_code == 200


def test_reports_are_stored_once_and_listed_newest_first(client):
    first = report("i-1", sent_at="2026-11-25T10:00:00Z")
    r = client.post("/v1/report/i-1", json=first, headers=AUTH)
    assert r.status_code == 202
    assert r.json() == {"report_id": first["report_id"], "stored": True}
    again = {**first, "state": "failed"}  # the same report_id: the first body wins
    assert client.post("/v1/report/i-1", json=again, headers=AUTH).json()["stored"] is False
    later = report("i-1", sent_at="2026-11-25T11:00:00+01:00", state="running")  # 10:00Z
    later["sent_at"] = "2026-11-25T12:00:00+01:00"
    client.post("/v1/report/i-1", json=later, headers=AUTH)
    client.post("/v1/report/i-2", json=report("i-2", sent_at="2026-11-25T09:00:00Z"), headers=AUTH)
    listing = client.get("/v1/instances", headers=ADMIN_AUTH).json()["instances"]
    assert [i["instance_id"] for i in listing] == ["i-1", "i-2"]
    assert listing[0]["state"] == "running"
    assert listing[0]["steps"] == {"done": 1, "failed": 1, "total": 2}
    one = client.get("/v1/instances/i-1", headers=ADMIN_AUTH).json()
    assert [x["report"]["report_id"] for x in one["reports"]] == [
        later["report_id"],
        first["report_id"],
    ]
    assert one["reports"][1]["report"]["state"] == "done"
    r = client.get("/v1/instances/i-404", headers=ADMIN_AUTH)
    assert r.status_code == 404
    assert "i-404" in r.json()["error"]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"kind": "Other"}, "kind must be 'StatusReport'"),
        ({"apiVersion": "v2"}, "apiVersion must be"),
        ({"instance_id": "someone-else"}, "instance_id does not match the URL"),
        ({"state": "weird"}, "state must be one of"),
        ({"steps": [{"id": "a", "status": "nope"}]}, "steps[0].status"),
        ({"sent_at": "yesterday"}, "not an RFC 3339 time"),
        ({"config_serial": "3"}, "config_serial has the wrong type"),
        ({"report_id": None}, "report_id has the wrong type"),
        ({"error": {"message": "m"}}, "error must be null or {code, message}"),
        ({"steps": None}, "steps has the wrong type"),
    ],
)
def test_invalid_reports_are_400_and_say_why(client, change, message):
    r = client.post("/v1/report/i-1", json=report(**change), headers=AUTH)
    assert r.status_code == 400
    assert message in r.json()["error"]


@pytest.mark.parametrize(
    "field",
    [
        "apiVersion",
        "kind",
        "report_id",
        "instance_id",
        "role",
        "agent_version",
        "state",
        "sent_at",
        "steps",
    ],
)
def test_a_report_missing_a_required_field_is_400(client, field):
    body = report()
    del body[field]
    r = client.post("/v1/report/i-1", json=body, headers=AUTH)
    assert r.status_code == 400
    assert f"{field} is required" in r.json()["error"]


@pytest.mark.parametrize(
    ("body", "headers", "message"),
    [
        (b'{"a": 1, "a": 2}', {}, "duplicate key"),
        (b'{"a": NaN}', {}, "NaN is not JSON"),
        (b"[1]", {}, "must be a JSON object"),
        (b"{", {}, "invalid JSON"),
        (b"{}", {"Content-Type": "text/plain"}, "Content-Type must be application/json"),
    ],
)
def test_bodies_that_are_not_one_strict_json_object_are_400(client, body, headers, message):
    h = {**AUTH, "Content-Type": "application/json", **headers}
    r = client.post("/v1/report/i-1", content=body, headers=h)
    assert r.status_code == 400
    assert message in r.json()["error"]


def test_a_report_without_content_length_is_400(client):
    async def chunks() -> AsyncIterator[bytes]:
        yield json.dumps(report()).encode()

    h = {**AUTH, "Content-Type": "application/json"}
    r = client.post("/v1/report/i-1", content=chunks(), headers=h)
    assert r.status_code == 400
    assert "Content-Length" in r.json()["error"]


@pytest.mark.parametrize(("size", "status"), [(1024 * 1024, 202), (1024 * 1024 + 1, 413)])
def test_a_report_of_exactly_one_mib_is_taken_one_byte_more_is_413(client, size, status):
    body = json.dumps(report(steps=[{"id": "a", "status": "done", "output_tail": ""}]))
    body = body.replace('"output_tail": ""', '"output_tail": "' + "x" * (size - len(body)) + '"')
    assert len(body.encode()) == size
    h = {**AUTH, "Content-Type": "application/json"}
    r = client.post("/v1/report/i-1", content=body.encode(), headers=h)
    assert r.status_code == status, r.json()


def test_reports_over_one_mib_are_413(client):
    big = report(steps=[{"id": "a", "status": "done", "output_tail": "x" * (1024 * 1024)}])
    r = client.post("/v1/report/i-1", json=big, headers=AUTH)
    assert r.status_code == 413
    assert "at most 1048576 bytes" in r.json()["error"]


def test_a_lying_content_length_is_caught_while_streaming(service):
    import asyncio

    app = create_app(service)
    body = b"{" + b" " * (1024 * 1024 + 10) + b"}"
    sent = []
    state = {"rest": body}

    async def receive_chunks():
        data = state["rest"]
        chunk, state["rest"] = data[:65536], data[65536:]
        return {"type": "http.request", "body": chunk, "more_body": bool(state["rest"])}

    async def send(message):
        sent.append(message)

    scope = {
        "type": "http",
        "method": "POST",
        "path": "/v1/report/i-1",
        "raw_path": b"/v1/report/i-1",
        "query_string": b"",
        "headers": [
            (b"content-type", b"application/json"),
            (b"content-length", b"10"),
            (b"authorization", f"Bearer {FLEET}".encode()),
        ],
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 80),
        "scheme": "http",
        "http_version": "1.1",
        "root_path": "",
        "app": app,
    }
    asyncio.run(app(scope, receive_chunks, send))
    assert sent[0]["status"] == 413


def test_unknown_paths_and_methods_answer_json(client):
    r = client.get("/v2/nothing")
    assert r.status_code == 404
    assert r.json() == {"error": "not found"}
    r = client.post("/v1/config/web/i-1")
    assert r.status_code == 405
    assert r.json() == {"error": "method not allowed"}


def test_healthz_needs_no_token(client):
    assert client.get("/healthz").json() == {"status": "ok", "roles": 2}


def test_without_fleet_tokens_agents_need_none_and_without_admin_listing_is_refused(tmp_path):
    store = SqliteStore(tmp_path / "data")
    svc = Service(write_repo(tmp_path / "configs"), store, [generate()])
    c = AppClient(create_app(svc))
    assert c.get("/v1/config/web/i-1").status_code == 200
    r = c.get("/v1/instances")
    assert r.status_code == 403
    assert r.json() == {"error": "no admin token is configured on this server"}
    store.close()


def test_a_failing_store_answers_500_with_a_json_error(service, monkeypatch):
    import asyncio

    import httpx

    def broken(batch):
        raise RuntimeError("disk full at /secret/path")

    monkeypatch.setattr(service.store, "add_reports", broken)

    async def post() -> httpx.Response:
        transport = httpx.ASGITransport(app=create_app(service), raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://cfg.test") as c:
            return await c.post("/v1/report/i-1", json=report(), headers=AUTH)

    r = asyncio.run(post())
    assert r.status_code == 500
    assert r.headers["content-type"] == "application/json"
    assert r.json() == {"error": "internal error; see the server's log"}


def test_secrets_that_baked_steps_ask_for_are_delivered_when_the_role_declares_them(
    tmp_path, monkeypatch
):
    monkeypatch.setenv("TEST_JOIN_USER", "joiner")
    configs = write_repo(tmp_path / "configs")
    (configs / "roles" / "app.yaml").write_text(
        "version: 1\nkind: RoleConfig\nrole: app\n"
        "secrets: {join_user: {env: TEST_JOIN_USER}, svc: {env: TEST_JOIN_USER}}\n"
        "steps: [{id: f, file: {path: 'C:\\a.txt', content: a}}]\n",
        encoding="utf-8",
    )
    store = SqliteStore(tmp_path / "data")
    tokens = Tokens((hash_token(FLEET),), (hash_token(ADMIN),))
    app = create_app(Service(configs, store, [generate()], tokens))
    client = AppClient(app, base_url="https://cfg.test")
    try:
        plain = client.get("/v1/config/app/i-1", headers=AUTH).json()
        assert "secrets" not in plain  # never more than asked for or used
        asked = {**AUTH, "Vmprep-Secrets": "join_user, svc"}
        doc = client.get("/v1/config/app/i-1", headers=asked).json()
        assert doc["secrets"] == {"join_user": "joiner", "svc": "joiner"}
        r = client.get("/v1/config/app/i-1", headers={**AUTH, "Vmprep-Secrets": "svc, nope"})
        assert r.status_code == 409
        assert "role 'app' does not declare secret(s) 'nope'" in r.json()["error"]
        r = client.get("/v1/config/app/i-1", headers={**AUTH, "Vmprep-Secrets": "a b"})
        assert r.status_code == 400
        assert "invalid secret name" in r.json()["error"]
        # a secret declared for one instance only is delivered to that instance only
        r = client.get("/v1/config/web/i-1", headers={**AUTH, "Vmprep-Secrets": "svc"})
        assert r.status_code == 409
    finally:
        store.close()
