"""A fleet token limited to the roles an image may take (issue 20): with the role chosen at
deploy time, a copy of the image's token cannot ask for another role's documents."""

from __future__ import annotations

import pytest

from tests.server.conftest import AppClient, write_repo
from vmprep.errors import InputError
from vmprep.server.app import create_app
from vmprep.server.keys import generate
from vmprep.server.service import Service, hash_token, load_tokens
from vmprep.server.store import SqliteStore

WEB_ONLY, ANY_ROLE, ADMIN = "token-web-only", "token-any-role", "token-admin"


@pytest.fixture
def client(tmp_path, monkeypatch):
    monkeypatch.setenv("TEST_JOIN_USER", "joiner")
    tokens_file = tmp_path / "tokens"
    tokens_file.write_text(
        f"fleet {hash_token(WEB_ONLY)} roles=web\n"
        f"fleet {hash_token(ANY_ROLE)}\n"
        f"admin {hash_token(ADMIN)}\n"
    )
    store = SqliteStore(tmp_path / "data")
    configs = write_repo(tmp_path / "configs", sql=True)
    service = Service(configs, store, [generate()], load_tokens(tokens_file))
    yield AppClient(create_app(service), base_url="https://cfg.test")
    store.close()


@pytest.mark.parametrize(
    ("token", "role", "status"),
    [
        (WEB_ONLY, "web", 200),
        (WEB_ONLY, "sql", 403),
        (ANY_ROLE, "sql", 200),
        (ADMIN, "sql", 200),
        ("wrong", "web", 403),
    ],
)
def test_a_token_fetches_only_the_roles_it_names(client, token, role, status):
    r = client.get(f"/v1/config/{role}/i-1", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == status
    if status == 403 and token == WEB_ONLY:
        assert r.json() == {"error": "this token may not fetch configs for role 'sql'"}


@pytest.mark.parametrize("line", ["fleet {h} roles=", "fleet {h} roles=a,,b", "admin {h} roles=a"])
def test_a_malformed_roles_list_is_refused_with_its_line(tmp_path, line):
    path = tmp_path / "tokens"
    path.write_text(line.format(h=hash_token("x")) + "\n")
    with pytest.raises(InputError, match=":1:1: expected"):
        load_tokens(path)


def test_status_shows_which_input_chose_the_role(tmp_path):
    import json
    import sqlite3

    from tests.server.test_fleet import report
    from vmprep.server.statusclient import rows

    old = tmp_path / "old"
    old.mkdir()
    with sqlite3.connect(old / "vmprep.sqlite3") as db:  # a store made before deploy-time inputs
        db.execute(
            "CREATE TABLE instances (instance_id TEXT PRIMARY KEY, role TEXT,"
            " computer_name TEXT, agent_version TEXT, config_serial INTEGER, state TEXT,"
            " steps_done INTEGER, steps_failed INTEGER, steps_total INTEGER, error TEXT,"
            " report_id TEXT, sent_at TEXT, received_at REAL, sent REAL)"
        )
    store = SqliteStore(old)
    try:
        inputs = {"role": {"value": "sql", "source": "azure-tags"}}
        store.add_reports(
            [report("i-1", "sql", "done", 10.0, inputs=inputs), report("i-2", "web", "done", 9.0)]
        )
        found = {i["instance_id"]: i for i in store.instances()}
    finally:
        store.close()
    assert found["i-1"]["inputs"] == inputs
    assert json.dumps(found["i-2"]["inputs"]) == "null"
    table = {r[0]: r[1] for r in rows(list(found.values()), now=20.0)}
    assert table == {"i-1": "sql (from azure-tags)", "i-2": "web"}
