from __future__ import annotations

import json

import pytest

from tests.server.conftest import verify, write_repo
from vmprep.protocol.canonical import canonical_json
from vmprep.server.documents import Issuer
from vmprep.server.keys import generate
from vmprep.server.repo import load_repository
from vmprep.server.store import SqliteStore

T0 = 1_790_000_000.0


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def setup(tmp_path):
    root = write_repo(tmp_path / "configs", sql=True)
    store = SqliteStore(tmp_path / "data")
    clock = Clock()
    key = generate()
    env = {"TEST_JOIN_USER": "joiner"}

    def issuer(keys=None):
        return Issuer(load_repository(root, env), store, keys or [key], clock)

    yield root, store, clock, key, issuer
    store.close()


def doc(signed):
    return json.loads(signed.body)


def test_a_document_has_every_required_field_in_canonical_form(setup):
    _, _, _, key, issuer = setup
    iss = issuer()
    signed = iss.signed(iss.content("web", "i-1"))
    d = doc(signed)
    assert d["apiVersion"] == "vmprep/v1"
    assert d["kind"] == "InstanceConfig"
    assert d["target"] == {"role": "web"}  # no override: the role-wide document
    assert d["issued_at"] == "2026-09-21T14:13:20Z"
    assert d["expires_at"] == "2026-09-21T15:13:20Z"
    assert [s["id"] for s in d["steps"]] == ["iis", "banner"]
    assert "secrets" not in d
    assert signed.body == canonical_json(d)
    assert verify(signed.signature, signed.body, key)


def test_overrides_match_by_instance_id_then_mac_then_computer_name(setup):
    *_, issuer = setup
    iss = issuer()
    canary = doc(iss.signed(iss.content("web", "canary-1", "00-15-5d-01-02-03", "WEB-EU-1")))
    assert canary["target"] == {"role": "web", "instance_id": "canary-1"}
    assert canary["variables"] == {"site": "canary"}
    # the override's steps run after the role's
    assert [s["id"] for s in canary["steps"]] == ["iis", "banner", "canary-banner", "extra"]
    by_mac = doc(iss.signed(iss.content("web", "i-2", "00-15-5d-01-02-03", "WEB-EU-1")))
    assert by_mac["steps"][-1]["id"] == "by-mac"
    by_name = doc(iss.signed(iss.content("web", "i-3", None, "web-eu-7")))
    assert by_name["steps"][-1]["id"] == "by-name"
    assert iss.content("nope", "i-1") is None


def test_only_the_secrets_the_steps_use_are_delivered(setup):
    *_, issuer = setup
    iss = issuer()
    signed = iss.signed(iss.content("sql", "db-1"))
    assert doc(signed)["secrets"] == {"join_user": "joiner", "join_password": "s3cret-P@ss"}
    assert signed.has_secrets


def test_signing_happens_once_per_issue_not_per_request(setup, monkeypatch):
    *_, key, issuer = setup
    iss = issuer()
    calls = []
    real = type(key).entry
    monkeypatch.setattr(type(key), "entry", lambda self, body: calls.append(1) or real(self, body))
    first = iss.signed(iss.content("web", "a"))
    for name in ("b", "c", "d"):
        assert iss.signed(iss.content("web", name)) is first
    assert len(calls) == 1


def test_serials_grow_with_content_and_time_and_survive_a_restart(setup):
    root, _store, clock, _, issuer = setup
    iss = issuer()
    s1 = iss.signed(iss.content("web", "a"))
    # a restart: a new issuer over the same store rebuilds the very same bytes
    again = issuer().signed(issuer().content("web", "a"))
    assert (again.body, again.signature) == (s1.body, s1.signature)
    # half the ttl later the document is re-issued: same content, newer serial and times
    clock.now += 1800
    iss = issuer()
    s2 = iss.signed(iss.content("web", "a"))
    assert s2.serial > s1.serial
    assert s2.first_serial == s1.serial
    assert iss.is_current(s1.serial, iss.content("web", "a"), s2)
    # an edit to the repository is a new content version
    web = root / "roles" / "web.yaml"
    web.write_text(web.read_text().replace("site: contoso", "site: fabrikam"))
    iss = issuer()
    s3 = iss.signed(iss.content("web", "a"))
    assert s3.serial > s2.serial
    assert s3.first_serial == s3.serial
    assert not iss.is_current(s2.serial, iss.content("web", "a"), s3)
    assert iss.is_current(s3.serial, iss.content("web", "a"), s3)


def test_serials_are_one_counter_so_a_new_override_never_looks_like_a_replay(setup):
    root, _, _, _, issuer = setup
    iss = issuer()
    role_wide = iss.signed(iss.content("web", "new-box"))
    web = root / "roles" / "web.yaml"
    web.write_text(web.read_text() + "  - match: {instance_id: new-box}\n    variables: {x: y}\n")
    iss = issuer()
    own = iss.signed(iss.content("web", "new-box"))
    assert doc(own)["target"]["instance_id"] == "new-box"
    assert own.serial > role_wide.serial
    # a serial issued to another target is never "current" for this one
    assert not iss.is_current(role_wide.serial, iss.content("web", "new-box"), own)


def test_a_new_signing_key_reissues_and_signs_with_every_key(setup):
    *_, key, issuer = setup
    iss = issuer()
    old = iss.signed(iss.content("web", "a"))
    new_key = generate()
    iss = issuer([key, new_key])
    both = iss.signed(iss.content("web", "a"))
    assert both.serial > old.serial
    assert verify(both.signature, both.body, key)
    assert verify(both.signature, both.body, new_key)
    assert both.signature.count("keyid=") == 2
