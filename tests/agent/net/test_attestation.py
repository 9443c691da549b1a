"""The agent's attestation evidence (vmprep/agent/attestation.py) against a loopback fake
metadata service that checks the clouds' headers, and a scripted config service: what goes
into `Vmprep-Attestation`, the challenge, the one retry on `attestation-nonce`, the service's
refusals and an unreachable metadata service. Sleeps are injected: nothing waits for real."""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest

from tests.agent.net.conftest import IDENTITY, Clock, Reply, Seen, Server, Signer, doc_bytes
from tests.agent.net.test_fetch import PATH, config, fetch, refused, signed
from tests.attestation_fakes import Clouds, FakeMetadata, serve_metadata
from vmprep.agent.attestation import MAX_HEADER, service_base
from vmprep.agent.config import ConfigError, load_config
from vmprep.agent.secrets import Secret

CHALLENGE = "/v1/attestation/challenge"


@pytest.fixture(scope="session")
def clouds() -> Clouds:
    return Clouds.make()


def metadata(clouds: Clouds, cloud: str, **kwargs: Any) -> Iterator[FakeMetadata]:
    fake = FakeMetadata(clouds, cloud, IDENTITY.instance_id, **kwargs)
    yield from serve_metadata(fake)


@pytest.fixture
def azure(clouds: Clouds) -> Iterator[FakeMetadata]:
    yield from metadata(clouds, "azure")


@pytest.fixture
def aws(clouds: Clouds) -> Iterator[FakeMetadata]:
    yield from metadata(clouds, "aws")


@pytest.fixture
def gce(clouds: Clouds) -> Iterator[FakeMetadata]:
    yield from metadata(clouds, "gce")


def nonce_reply(*nonces: str) -> list[Reply]:
    return [
        Reply(200, json.dumps({"nonce": n, "expires_at": "2027-01-15T08:05:00Z"}).encode())
        for n in nonces
    ]


def evidence(seen: Seen) -> tuple[str, bytes]:
    kind, _, value = seen.headers["vmprep-attestation"].partition(" ")
    assert "=" not in value
    assert "+" not in value
    assert "/" not in value
    return kind, base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))


def config_requests(server: Server) -> list[Seen]:
    return [s for s in server.requests if s.path == PATH]


def refusal(code: str, status: int = 403) -> Reply:
    body = json.dumps({"error": code, "message": f"the service says {code}"}).encode()
    return Reply(status, body, headers=[("Vmprep-Error", code)])


# -- the base URL ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("url", "base"),
    [
        ("https://cfg.example.com/v1/config/{role}/{instance_id}", "https://cfg.example.com"),
        ("https://cfg.example.com/fleet/v1/config/web/x?mac=1", "https://cfg.example.com/fleet"),
        ("https://cfg.example.com:8443/a/b/", "https://cfg.example.com:8443"),
        ("http://127.0.0.1:9/v1/config/web/_role", "http://127.0.0.1:9"),
    ],
)
def test_service_base_is_the_url_before_its_config_path(url: str, base: str):
    assert service_base(url) == base


# -- Azure ----------------------------------------------------------------------------------------
def test_azure_sends_the_attested_document_for_a_fresh_nonce(
    server: Server, signer: Signer, clock: Clock, azure: FakeMetadata, caplog: Any
):
    server.route(CHALLENGE, *nonce_reply("0123456789"))
    server.route(PATH, signed(signer))
    caplog.set_level(logging.DEBUG)
    cfg = config(server, signer, metadata_url=azure.base)
    outcome = fetch(cfg, clock, attestation="azure-imds", token=Secret("t", "fleet-token"))
    assert outcome.kind == "document", outcome.message

    challenge = next(s for s in server.requests if s.path == CHALLENGE)
    assert challenge.method == "POST"
    assert json.loads(challenge.body) == {"instance_id": IDENTITY.instance_id}
    assert challenge.headers["authorization"] == "Bearer fleet-token"
    [imds] = azure.requests
    assert (imds.path, imds.query["nonce"], imds.query["api-version"]) == (
        "/metadata/attested/document",
        ["0123456789"],
        ["2020-09-01"],
    )
    assert imds.headers["metadata"] == "true"
    assert "authorization" not in imds.headers  # the fleet token never goes to the cloud
    kind, raw = evidence(config_requests(server)[0])
    document = json.loads(raw)
    assert kind == "azure-imds"
    assert document["encoding"] == "pkcs7"
    # The document is a credential: not in the log, nor is the nonce.
    assert document["signature"][:40] not in caplog.text
    assert "0123456789" not in caplog.text


def test_every_attempt_gets_its_own_nonce(
    server: Server, signer: Signer, clock: Clock, azure: FakeMetadata
):
    server.route(CHALLENGE, *nonce_reply("1111111111", "2222222222"))
    server.route(PATH, Reply(503), signed(signer))
    outcome = fetch(
        config(server, signer, metadata_url=azure.base), clock, attestation="azure-imds"
    )
    assert outcome.kind == "document", outcome.message
    assert [r.query["nonce"] for r in azure.requests] == [["1111111111"], ["2222222222"]]


def test_a_refused_nonce_gets_a_new_challenge_once(
    server: Server, signer: Signer, clock: Clock, azure: FakeMetadata
):
    server.route(CHALLENGE, *nonce_reply("1111111111", "2222222222"))
    server.route(PATH, refusal("attestation-nonce"), signed(signer))
    outcome = fetch(
        config(server, signer, metadata_url=azure.base), clock, attestation="azure-imds"
    )
    assert outcome.kind == "document", outcome.message
    assert len(config_requests(server)) == 2
    assert clock.sleeps == []  # retried at once: a new nonce is all it takes


def test_a_second_refused_nonce_ends_the_fetch(
    server: Server, signer: Signer, clock: Clock, azure: FakeMetadata
):
    server.route(CHALLENGE, *nonce_reply("1111111111", "2222222222", "3333333333"))
    server.route(PATH, refusal("attestation-nonce"))
    outcome = fetch(
        config(server, signer, metadata_url=azure.base), clock, attestation="azure-imds"
    )
    refused(outcome, "attestation_nonce")
    assert len(config_requests(server)) == 2
    assert "the service says attestation-nonce" in (outcome.message or "")


def test_a_service_without_a_challenge_is_fetched_without_attestation(
    server: Server, signer: Signer, clock: Clock, azure: FakeMetadata
):
    server.route(CHALLENGE, Reply(404))  # an older vmprep serve, or a static tree
    server.route(PATH, signed(signer))
    outcome = fetch(
        config(server, signer, metadata_url=azure.base), clock, attestation="azure-imds"
    )
    assert outcome.kind == "document", outcome.message
    assert "vmprep-attestation" not in config_requests(server)[0].headers
    assert azure.requests == []


def test_a_challenge_refused_for_the_token_is_unauthorized(
    server: Server, signer: Signer, clock: Clock, azure: FakeMetadata
):
    server.route(CHALLENGE, Reply(401))
    outcome = fetch(
        config(server, signer, metadata_url=azure.base), clock, attestation="azure-imds"
    )
    refused(outcome, "unauthorized")
    assert config_requests(server) == []


# -- AWS ------------------------------------------------------------------------------------------
def test_aws_sends_the_rsa2048_document_after_an_imdsv2_token(
    server: Server, signer: Signer, clock: Clock, aws: FakeMetadata
):
    server.route(PATH, Reply(503), signed(signer))
    outcome = fetch(config(server, signer, metadata_url=aws.base), clock, attestation="aws-iid")
    assert outcome.kind == "document", outcome.message
    token, document = aws.requests
    assert (token.method, token.path) == ("PUT", "/latest/api/token")
    assert token.headers["x-aws-ec2-metadata-token-ttl-seconds"] == "300"
    assert (document.method, document.path) == ("GET", "/latest/dynamic/instance-identity/rsa2048")
    assert document.headers["x-aws-ec2-metadata-token"]
    first, second = config_requests(server)
    kind, raw = evidence(second)
    assert kind == "aws-iid"
    assert base64.b64decode(raw)[:2] == b"\x30\x82"
    assert first.headers["vmprep-attestation"] == second.headers["vmprep-attestation"]
    assert aws.documents == 1  # a static document: fetched once per fetch
    assert not any(s.path == CHALLENGE for s in server.requests)


# -- GCE ------------------------------------------------------------------------------------------
def test_gce_sends_an_identity_token_for_the_service_base_url(
    server: Server, signer: Signer, clock: Clock, gce: FakeMetadata
):
    server.route(PATH, signed(signer))
    outcome = fetch(config(server, signer, metadata_url=gce.base), clock, attestation="gce-iit")
    assert outcome.kind == "document", outcome.message
    [request] = gce.requests
    assert request.path == "/computeMetadata/v1/instance/service-accounts/default/identity"
    assert request.query == {"audience": [server.url("")], "format": ["full"]}
    assert request.headers["metadata-flavor"] == "Google"
    kind, raw = evidence(config_requests(server)[0])
    _header, claims, _sig = raw.split(b".")
    payload = json.loads(base64.urlsafe_b64decode(claims + b"=" * (-len(claims) % 4)))
    assert kind == "gce-iit"
    assert payload["aud"] == server.url("")
    assert payload["google"]["compute_engine"]["instance_id"] == IDENTITY.instance_id


def test_gce_without_a_service_account_is_refused_at_once_with_a_hint(
    server: Server, signer: Signer, clock: Clock, clouds: Clouds
):
    for fake in metadata(clouds, "gce", fail=404):
        outcome = fetch(
            config(server, signer, metadata_url=fake.base), clock, attestation="gce-iit"
        )
    refused(outcome, "attestation_unavailable")
    assert "service account" in (outcome.message or "")
    assert clock.sleeps == []
    assert config_requests(server) == []


# -- the service's refusals --------------------------------------------------------------------
@pytest.mark.parametrize(
    ("status", "said", "code"),
    [
        (401, "attestation-required", "attestation_required"),
        (400, "attestation-malformed", "attestation_malformed"),
        (400, "something-else", "unreachable"),  # any other 400 is an unexpected status
        (403, "attestation-invalid", "attestation_invalid"),
        (403, "attestation-mismatch", "attestation_mismatch"),
        (403, "attestation-not-allowed", "attestation_not_allowed"),
        (403, "something-else", "unauthorized"),
    ],
)
def test_attestation_refusals_have_their_own_codes(
    server: Server,
    signer: Signer,
    clock: Clock,
    aws: FakeMetadata,
    status: int,
    said: str,
    code: str,
):
    server.route(PATH, refusal(said, status))
    outcome = fetch(config(server, signer, metadata_url=aws.base), clock, attestation="aws-iid")
    refused(outcome, code)
    assert len(config_requests(server)) == 1  # no retry


def test_a_large_error_page_is_still_a_refusal(server: Server, signer: Signer, clock: Clock):
    server.route(PATH, Reply(403, b"<html>" + b"x" * 10_000, headers=[("Vmprep-Error", "x")]))
    refused(fetch(config(server, signer), clock), "unauthorized")


# -- the metadata service is not there --------------------------------------------------------
@pytest.mark.parametrize("cloud", ["azure", "aws", "gce"])
def test_an_unreachable_metadata_service_is_retried_then_reported(
    server: Server, signer: Signer, clock: Clock, clouds: Clouds, cloud: str, caplog: Any
):
    server.route(CHALLENGE, *nonce_reply("1234567890"))
    server.route(PATH, signed(signer))
    kind = {"azure": "azure-imds", "aws": "aws-iid", "gce": "gce-iit"}[cloud]
    for fake in metadata(clouds, cloud, fail=503):
        cfg = config(server, signer, metadata_url=fake.base)
        cfg["retry"] = {"attempts": 3, "initial": "1s", "max": "2s"}
        outcome = fetch(cfg, clock, attestation=kind, token=Secret("t", "fleet-token"))
    assert (outcome.kind, outcome.error_code) == ("unreachable", "attestation_unavailable")
    assert "metadata service answered HTTP 503" in (outcome.message or "")
    assert len(clock.sleeps) == 2
    assert config_requests(server) == []  # no document, no config request
    assert "fleet-token" not in caplog.text
    assert "1234567890" not in caplog.text


def test_a_metadata_service_that_refuses_connections_is_unavailable(
    server: Server, signer: Signer, clock: Clock
):
    from tests.agent.net.conftest import free_port

    cfg = config(server, signer, metadata_url=f"http://127.0.0.1:{free_port()}")
    cfg["retry"] = {"attempts": 2, "initial": "1s", "max": "1s"}
    outcome = fetch(cfg, clock, attestation="aws-iid")
    assert outcome.error_code == "attestation_unavailable"
    assert "did not answer" in (outcome.message or "")


@pytest.mark.parametrize(("size", "why"), [(12_285, str(MAX_HEADER)), (12_300, "over 12288")])
def test_an_oversized_document_is_not_sent(
    server: Server, signer: Signer, clock: Clock, clouds: Clouds, size: int, why: str
):
    for fake in metadata(clouds, "gce"):
        fake.answer = lambda seen: (200, {}, b"A" * size)  # type: ignore[method-assign]
        outcome = fetch(
            config(server, signer, metadata_url=fake.base), clock, attestation="gce-iit"
        )
    refused(outcome, "attestation_unavailable")
    assert why in (outcome.message or "")
    assert config_requests(server) == []


def test_the_fake_metadata_service_insists_on_the_clouds_headers(clouds: Clouds):
    """The fakes are strict as the clouds are (else the tests above could pass wrongly)."""
    from vmprep.agent.http import Session

    session = Session(timeout=5, allow_http=True)
    for cloud, path in [
        ("azure", "/metadata/attested/document?api-version=2020-09-01&nonce=1"),
        ("aws", "/latest/dynamic/instance-identity/rsa2048"),
        ("gce", "/computeMetadata/v1/instance/service-accounts/default/identity?audience=x"),
    ]:
        for fake in metadata(clouds, cloud):
            answer = session.request("GET", fake.base + path, headers={}, max_bytes=65536)
            assert answer.status in (400, 401, 403), (cloud, answer.status)
            assert fake.documents == 0


# -- agent.json ---------------------------------------------------------------------------------
def _agent_json(tmp_path: Any, platform: str, **phone_home: Any) -> Any:
    path = tmp_path / "agent.json"
    ph: dict[str, Any] = {
        "url": "https://cfg.example.com/v1/config/{role}/{instance_id}",
        "role": "web",
        "trusted_keys": ["ed25519:x"],
        **phone_home,
    }
    path.write_text(json.dumps({"image": {"platform": platform}, "phone_home": ph}))
    return path


@pytest.mark.parametrize(
    ("platform", "setting", "kind"),
    [
        ("azure", "auto", "azure-imds"),
        ("aws", "auto", "aws-iid"),
        ("gce", "auto", "gce-iit"),
        ("hyperv", "auto", None),
        ("azure", "off", None),
        ("azure", None, None),  # an agent.json from before attestation: off
        ("generic", "gce-iit", "gce-iit"),
    ],
)
def test_agent_json_attestation_setting(tmp_path: Any, platform: str, setting: Any, kind: Any):
    extra = {} if setting is None else {"attestation": setting}
    assert load_config(_agent_json(tmp_path, platform, **extra)).attestation == kind


@pytest.mark.parametrize(
    "extra",
    [{"attestation": "tpm"}, {"metadata_url": "file:///etc/passwd"}, {"metadata_url": 7}],
)
def test_agent_json_refuses_a_bad_attestation_setting(tmp_path: Any, extra: dict[str, Any]):
    with pytest.raises(ConfigError, match=r"phone_home\.(attestation|metadata_url)"):
        load_config(_agent_json(tmp_path, "azure", **extra))


def test_no_attestation_sends_no_header(server: Server, signer: Signer, clock: Clock):
    server.route(PATH, signed(signer, doc_bytes()))
    assert fetch(config(server, signer), clock).kind == "document"
    assert "vmprep-attestation" not in config_requests(server)[0].headers


def test_the_evidence_does_not_follow_a_redirect_to_another_origin(
    server: Server, server2: Server, signer: Signer, clock: Clock, aws: FakeMetadata
):
    server.route(PATH, Reply(302, headers=[("Location", server2.url(PATH))]))
    server2.route(PATH, signed(signer))
    outcome = fetch(config(server, signer, metadata_url=aws.base), clock, attestation="aws-iid")
    assert outcome.kind == "document", outcome.message
    assert "vmprep-attestation" in server.requests[0].headers
    assert "vmprep-attestation" not in server2.requests[0].headers


def test_the_gce_identity_source_gives_the_id_the_token_vouches_for(clouds: Clouds):
    from vmprep.agent.identity import identify

    for fake in metadata(clouds, "gce"):
        fake.instance_id = "4567890123456789012"
        found = identify(["gce-metadata", "mac"], endpoints={"gce-metadata": fake.base})
        assert (found.instance_id, found.source) == ("4567890123456789012", "gce-metadata")
        assert fake.requests[0].headers["metadata-flavor"] == "Google"
        fake.fail = 404  # not on GCE: the next source
        with pytest.raises(Exception, match="gce-metadata: GCE metadata instance/id answered"):
            identify(["gce-metadata"], endpoints={"gce-metadata": fake.base})
