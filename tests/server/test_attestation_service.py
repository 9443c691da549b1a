"""A role's `attestation` mode through the HTTP API (issue #15): with `required`, no request
without a valid attestation for the same instance id gets the document, and no refusal
carries a secret. Documents are forged by test clouds (tests/attestation_fakes.py)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from tests.attestation_fakes import (
    aws_identity,
    aws_rsa2048,
    azure_content,
    azure_document,
    gce_claims,
    gce_token,
)
from tests.server.attestation_setup import AUDIENCE, UTC, clouds, header, strangers, write_anchors
from tests.server.conftest import AppClient, write_repo
from vmprep.errors import InputError
from vmprep.server.app import create_app
from vmprep.server.attestation import Attestor
from vmprep.server.attestation.anchors import load_anchors
from vmprep.server.keys import generate
from vmprep.server.publish import publish
from vmprep.server.repo import RepositoryError, load_repository
from vmprep.server.service import Service, Tokens, hash_token

FLEET = {"Authorization": "Bearer fleet-token"}
ADMIN = {"Authorization": "Bearer admin-token"}
SUBSCRIPTION = "8d10da13-8125-4ba9-a717-bf7490507b3d"  # the fakes' defaults
ACCOUNT, PROJECT = "123456789012", "vmprep-test"
PASSWORD, USER = "s3cret-P@ss", "joiner"
VM = "8f4a1a7c-3d4e-4f5a-9b6c-7d8e9f0a1b2c"
NOW = dt.datetime.now(UTC)

ROLE = """\
version: 1
kind: RoleConfig
role: {name}
attestation: "{mode}"
{allow}secrets:
  join_user: {{env: TEST_JOIN_USER}}
  join_password: {{file: join.txt}}
steps:
  - id: join
    join_domain: {{domain: corp.example, credentials: remote}}
"""
ALLOW = (
    "attestation_allow:\n"
    f"  subscriptions: ['{SUBSCRIPTION.upper()}']\n"
    f"  accounts: ['{ACCOUNT}', '210987654321']\n"
    f"  projects: ['{PROJECT}']\n"
)


def write_role(root, name, mode, allow=ALLOW) -> Any:
    (root / "roles" / f"{name}.yaml").write_text(
        ROLE.format(name=name, mode=mode, allow=allow if mode != "off" else "")
    )


@pytest.fixture
def service(tmp_path, monkeypatch):
    from vmprep.server.store import SqliteStore

    monkeypatch.setenv("TEST_JOIN_USER", USER)
    configs = write_repo(tmp_path / "configs", sql=True)
    write_role(configs, "dc", "required")
    write_role(configs, "anyone", "required", allow="")
    write_role(configs, "maybe", "optional")
    write_role(configs, "never", "off")
    attestor = Attestor(load_anchors(write_anchors(tmp_path / "anchors")), (AUDIENCE,))
    tokens = Tokens((hash_token("fleet-token"),), (hash_token("admin-token"),))
    store = SqliteStore(tmp_path / "data")
    svc = Service(configs, store, [generate()], tokens, attestor=attestor)
    yield svc
    store.close()


@pytest.fixture
def client(service):
    return AppClient(create_app(service), base_url="https://cfg.test")


def no_secret(r) -> Any:
    assert PASSWORD not in r.text
    assert USER not in r.text
    assert "secrets" not in r.text


def refused(r, status, code) -> Any:
    assert (r.status_code, r.headers.get("vmprep-error")) == (status, code), r.text
    assert set(r.json()) == {"error", "message"}
    assert r.json()["error"] == code
    no_secret(r)


def served(r) -> Any:
    assert r.status_code == 200, r.text
    assert r.json()["secrets"] == {"join_user": USER, "join_password": PASSWORD}


def challenge(client, instance_id=VM) -> Any:
    r = client.post("/v1/attestation/challenge", json={"instance_id": instance_id}, headers=FLEET)
    assert r.status_code == 200, r.text
    return r.json()["nonce"]


def azure(nonce, vm_id=VM, **kw) -> Any:
    return header(
        "azure-imds",
        azure_document(azure_content(nonce=nonce, vm_id=vm_id, **kw), clouds().azure_signer),
    )


def aws(instance_id="i-0abc", signer=None, **kw) -> Any:
    return header(
        "aws-iid",
        aws_rsa2048(aws_identity(instance_id=instance_id, **kw), signer or clouds().aws_signer),
    )


def gce(instance_id="4567890123456789012", audience=AUDIENCE, **kw) -> Any:
    return header(
        "gce-iit",
        gce_token(gce_claims(audience=audience, instance_id=instance_id, **kw), clouds().gce_key),
    )


def fetch(client, role, instance_id, extra=None) -> Any:
    return client.get(f"/v1/config/{role}/{instance_id}", headers={**FLEET, **(extra or {})})


# -- required -----------------------------------------------------------------------------------
def test_required_without_the_header_is_401_and_carries_no_secret(client):
    r = fetch(client, "dc", VM)
    refused(r, 401, "attestation-required")
    assert "Vmprep-Attestation" in r.json()["message"]


def test_required_with_last_serial_but_no_header_is_401_too(client):
    refused(fetch(client, "dc", VM, {"Vmprep-Last-Serial": "1"}), 401, "attestation-required")


def test_azure_with_a_fresh_nonce_is_served_and_recorded(client, service):
    served(fetch(client, "dc", VM, azure(challenge(client))))
    record = service.store.attestation(VM)
    assert (record.kind, record.attested_id, record.scope, record.role) == (
        "azure-imds",
        VM,
        SUBSCRIPTION,
        "dc",
    )


def test_azure_vm_id_in_upper_case_matches_the_agents_lower_case_id(client):
    served(fetch(client, "dc", VM, azure(challenge(client), vm_id=VM.upper())))


def test_a_replayed_nonce_is_refused(client):
    evidence = azure(challenge(client))
    served(fetch(client, "dc", VM, evidence))
    refused(fetch(client, "dc", VM, evidence), 403, "attestation-nonce")


def test_a_nonce_never_issued_is_refused(client):
    refused(fetch(client, "dc", VM, azure("0000000042")), 403, "attestation-nonce")


def test_a_nonce_issued_to_another_instance_is_refused_and_used_up(client):
    nonce = challenge(client, "other-vm")
    refused(fetch(client, "dc", VM, azure(nonce)), 403, "attestation-nonce")
    refused(
        fetch(client, "dc", "other-vm", azure(nonce, vm_id="other-vm")), 403, "attestation-nonce"
    )


def test_an_expired_nonce_is_refused(client, service):
    import time

    service.store.add_nonce("0000000007", VM, time.time() - 1, time.time() - 301, 5)
    refused(fetch(client, "dc", VM, azure("0000000007")), 403, "attestation-nonce")


def test_a_nonce_consumed_by_a_failed_fetch_cannot_be_used_again(client):
    nonce = challenge(client)
    refused(fetch(client, "dc", "someone-else", azure(nonce)), 403, "attestation-nonce")
    refused(fetch(client, "dc", VM, azure(nonce)), 403, "attestation-nonce")


def test_azure_without_a_nonce_is_refused(client):
    refused(fetch(client, "dc", VM, azure("")), 403, "attestation-nonce")


def test_attested_instance_id_must_be_the_urls(client):
    refused(fetch(client, "dc", "i-victim", aws("i-attacker")), 403, "attestation-mismatch")
    refused(fetch(client, "dc", "1", gce("2")), 403, "attestation-mismatch")


def test_a_document_of_another_account_is_not_allowed(client):
    refused(
        fetch(client, "dc", "i-0abc", aws(account_id="999999999999")),
        403,
        "attestation-not-allowed",
    )
    refused(
        fetch(client, "dc", "4567890123456789012", gce(project_id="other-project")),
        403,
        "attestation-not-allowed",
    )


def test_without_an_allow_list_any_account_is_accepted(client):
    served(fetch(client, "anyone", "i-0abc", aws(account_id="999999999999")))


def test_aws_and_gce_valid_documents_are_served(client):
    served(fetch(client, "dc", "i-0abc", aws()))
    served(fetch(client, "dc", "4567890123456789012", gce()))


@pytest.mark.parametrize(
    ("evidence", "status", "code"),
    [
        ({"Vmprep-Attestation": "aws-iid " + "A" * 16400}, 400, "attestation-malformed"),
        ({"Vmprep-Attestation": "aws-iid %%%"}, 400, "attestation-malformed"),
        ({"Vmprep-Attestation": "tpm AAAA"}, 400, "attestation-malformed"),
        ({"Vmprep-Attestation": "gce-iit QUFB.QUFB.QUFB"}, 400, "attestation-malformed"),
    ],
)
def test_garbage_and_oversized_headers_are_malformed(client, evidence, status, code):
    refused(fetch(client, "dc", "i-0abc", evidence), status, code)


def test_wrong_signer_wrong_audience_and_expired_are_invalid(client):
    refused(
        fetch(client, "dc", "i-0abc", aws(signer=strangers().aws_signer)),
        403,
        "attestation-invalid",
    )
    refused(
        fetch(client, "dc", "1", gce("1", audience="https://elsewhere.test")),
        403,
        "attestation-invalid",
    )
    old = gce("1", issued=NOW - dt.timedelta(hours=3))
    refused(fetch(client, "dc", "1", old), 403, "attestation-invalid")


def test_the_role_wide_document_cannot_be_attested_for(client):
    refused(fetch(client, "dc", "_role"), 401, "attestation-required")
    refused(fetch(client, "dc", "_role", aws("_role")), 403, "attestation-mismatch")


def test_an_admin_token_does_not_skip_attestation(client):
    r = client.get(f"/v1/config/dc/{VM}", headers=ADMIN)
    refused(r, 401, "attestation-required")


def test_the_challenge_is_needed_even_when_the_token_is_not_checked(service):
    """A service without fleet tokens still asks attested roles for their attestation."""
    service.tokens = Tokens()
    client = AppClient(create_app(service), base_url="https://cfg.test")
    refused(client.get(f"/v1/config/dc/{VM}"), 401, "attestation-required")


# -- the per-instance binding -------------------------------------------------------------------
def test_an_instance_attested_once_is_served_again_on_reimage(client, service):
    served(fetch(client, "dc", "i-0abc", aws(pending=NOW - dt.timedelta(minutes=30))))
    served(fetch(client, "dc", "i-0abc", aws(pending=NOW)))  # re-imaged: same id, new start
    assert service.store.attestation("i-0abc").admitted == 2


def test_a_bound_instance_cannot_be_claimed_from_another_account(client):
    served(fetch(client, "dc", "i-0abc", aws()))
    refused(
        fetch(client, "dc", "i-0abc", aws(account_id="210987654321")), 403, "attestation-mismatch"
    )


def test_an_older_aws_document_than_the_one_that_admitted_the_instance_is_a_replay(client):
    served(fetch(client, "dc", "i-0abc", aws(pending=NOW)))
    replay = aws(pending=NOW - dt.timedelta(hours=1))
    refused(fetch(client, "dc", "i-0abc", replay), 403, "attestation-invalid")


def test_the_admin_api_shows_which_attestation_admitted_an_instance(client):
    import uuid

    served(fetch(client, "dc", "i-0abc", aws()))
    report = {
        "apiVersion": "vmprep/v1",
        "kind": "StatusReport",
        "report_id": str(uuid.uuid4()),
        "instance_id": "i-0abc",
        "role": "dc",
        "agent_version": "0.1.0",
        "state": "done",
        "sent_at": "2026-11-25T10:00:00Z",
        "steps": [],
    }
    assert client.post("/v1/report/i-0abc", json=report, headers=FLEET).status_code == 202
    found = client.get("/v1/instances/i-0abc", headers=ADMIN).json()["attestation"]
    assert {k: found[k] for k in ("kind", "attested_id", "scope", "role", "admitted")} == {
        "kind": "aws-iid",
        "attested_id": "i-0abc",
        "scope": ACCOUNT,
        "role": "dc",
        "admitted": 1,
    }


# -- optional and off ---------------------------------------------------------------------------
def test_optional_serves_an_old_agent_without_the_header(client):
    served(fetch(client, "maybe", "i-0abc"))


def test_optional_verifies_a_header_when_sent(client, service):
    refused(
        fetch(client, "maybe", "i-0abc", aws(signer=strangers().aws_signer)),
        403,
        "attestation-invalid",
    )
    served(fetch(client, "maybe", "i-0abc", aws()))
    assert service.store.attestation("i-0abc").role == "maybe"


def test_off_ignores_the_header_and_serves_old_agents(client, service):
    served(fetch(client, "never", "i-0abc", {"Vmprep-Attestation": "garbage"}))
    served(fetch(client, "never", "i-0abc"))
    assert service.store.attestation("i-0abc") is None


def test_a_service_without_trust_anchors_refuses_every_attestation(service):
    service.attestor = None
    client = AppClient(create_app(service), base_url="https://cfg.test")
    refused(fetch(client, "dc", "i-0abc", aws()), 403, "attestation-invalid")
    served(fetch(client, "maybe", "i-0abc"))


# -- the challenge endpoint ---------------------------------------------------------------------
def test_a_challenge_is_ten_digits_valid_five_minutes(client):
    r = client.post("/v1/attestation/challenge", json={"instance_id": VM}, headers=FLEET)
    assert r.status_code == 200
    assert r.headers["cache-control"] == "no-store"
    body = r.json()
    assert len(body["nonce"]) == 10
    assert body["nonce"].isdigit()
    expires = dt.datetime.strptime(body["expires_at"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    assert 290 <= (expires - dt.datetime.now(UTC)).total_seconds() <= 300


def test_five_outstanding_nonces_per_instance_then_429(client):
    for _ in range(5):
        challenge(client)
    r = client.post("/v1/attestation/challenge", json={"instance_id": VM}, headers=FLEET)
    assert r.status_code == 429
    assert r.headers["retry-after"] == "60"
    challenge(client, "another-vm")


@pytest.mark.parametrize(
    "body", [b"", b"[]", b"{}", b'{"instance_id": 5}', b'{"instance_id": "a b"}', b"\xff"]
)
def test_a_bad_challenge_body_is_400(client, body):
    r = client.post("/v1/attestation/challenge", content=body, headers=FLEET)
    assert r.status_code == 400


def test_a_challenge_needs_the_fleet_token(client):
    r = client.post("/v1/attestation/challenge", json={"instance_id": VM})
    assert r.status_code == 401


# -- the repository and publish ------------------------------------------------------------------
def test_publish_refuses_a_required_role_and_says_why(tmp_path, monkeypatch):
    monkeypatch.setenv("TEST_JOIN_USER", USER)
    configs = write_repo(tmp_path / "configs", sql=True)
    write_role(configs, "dc", "required")
    with pytest.raises(InputError, match="static files") as caught:
        publish(configs, [generate()], tmp_path / "out", allow_secrets=True)
    assert "'dc'" in str(caught.value)
    assert caught.value.hint is not None
    assert "vmprep serve" in caught.value.hint
    assert not (tmp_path / "out").exists()


def test_publish_keeps_serving_optional_roles(tmp_path, monkeypatch):
    monkeypatch.setenv("TEST_JOIN_USER", USER)
    configs = write_repo(tmp_path / "configs", sql=True)
    write_role(configs, "maybe", "optional")
    result = publish(configs, [generate()], tmp_path / "out", allow_secrets=True)
    assert "v1/config/maybe/_role" in result.documents


def test_an_allow_list_without_attestation_is_a_repository_problem(tmp_path, monkeypatch):
    monkeypatch.setenv("TEST_JOIN_USER", USER)
    configs = write_repo(tmp_path / "configs", sql=True)
    (configs / "roles" / "x.yaml").write_text(ROLE.format(name="x", mode="off", allow=ALLOW))
    with pytest.raises(RepositoryError) as caught:
        load_repository(configs)
    (problem,) = caught.value.problems
    assert (problem.code, problem.line) == ("attestation", 6)  # the value, as validate points


@pytest.mark.parametrize(
    "allow",
    [
        "attestation_allow: {accounts: ['12345']}\n",
        "attestation_allow: {subscriptions: ['not-a-guid']}\n",
        "attestation_allow: {tenants: ['x']}\n",
        "attestation_allow: {}\n",
    ],
)
def test_a_malformed_allow_list_is_a_schema_problem(tmp_path, monkeypatch, allow):
    monkeypatch.setenv("TEST_JOIN_USER", USER)
    configs = write_repo(tmp_path / "configs", sql=True)
    write_role(configs, "x", "required", allow=allow)
    with pytest.raises(RepositoryError) as caught:
        load_repository(configs)
    assert all("x.yaml" in p.file for p in caught.value.problems)


def test_an_unknown_mode_is_a_schema_problem(tmp_path, monkeypatch):
    monkeypatch.setenv("TEST_JOIN_USER", USER)
    configs = write_repo(tmp_path / "configs", sql=True)
    write_role(configs, "x", "sometimes", allow="")
    with pytest.raises(RepositoryError):
        load_repository(configs)


def test_the_operator_is_warned_of_roles_any_vm_can_attest_for(service):
    assert service.attestation_warnings() == [
        (
            "role 'anyone' has no attestation_allow: any VM of any subscription, account or "
            "project can attest for it (docs/attestation.md)"
        )
    ]
    service.attestor = None
    assert [w.split(" has")[0] for w in service.attestation_warnings()] == [
        "role 'anyone'",
        "role 'dc'",
        "role 'maybe'",
    ]
