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
