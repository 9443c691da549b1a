"""Attestation under the Windows CPython (issue #15): the rendered agent reads the AWS instance
identity document from a loopback fake metadata service (IMDSv2 token first) and sends it with
its config fetch; with the metadata service down, the run reports `attestation_unavailable`."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from tests.agent.net.conftest import Server
from tests.attestation_fakes import Clouds, FakeMetadata, serve_metadata
from tests.windows.bench import Prefix, spec

PHONE_HOME = (
    "  phone_home:\n"
    "    url: https://cfg.example.com/v1/config/{role}/{instance_id}\n"
    "    role: web\n"
    "    trusted_keys: ['ed25519:11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=']\n"
    "    attestation: aws-iid\n"
)


@pytest.fixture(scope="module")
def clouds() -> Clouds:
    return Clouds.make()


@pytest.fixture
def config_service() -> Iterator[Server]:
    server = Server()
    yield server
    server.close()


def run(prefix: Prefix, metadata: str, service: Server) -> Any:
    r = prefix.render(spec("bench-attest") + PHONE_HOME)
    cfg = r.agent_json
    assert cfg["phone_home"]["attestation"] == "aws-iid"
    cfg["phone_home"].update(
        url=[service.url("/v1/config/{role}/{instance_id}")],
        allow_insecure_http=True,
        metadata_url=metadata,
        retry={"attempts": 2, "initial": "100ms", "max": "100ms"},
    )
    cfg["identity"] = ["smbios-uuid"]
    prefix.write(r.config, json.dumps(cfg))
    prefix.run_agent()
    return json.loads(prefix.agent("status", "--config", r.config, "--format", "json").stdout)


def test_the_identity_document_goes_with_the_fetch(
    prefix: Prefix, clouds: Clouds, config_service: Server
) -> None:
    for fake in serve_metadata(FakeMetadata(clouds, "aws", "i-0123456789abcdef0")):
        state = run(prefix, fake.base, config_service)
        token, document = fake.requests
    assert state["state"] == "done", state
    assert (token.method, token.path) == ("PUT", "/latest/api/token")
    assert document.path == "/latest/dynamic/instance-identity/rsa2048"
    assert document.headers["x-aws-ec2-metadata-token"]
    [fetch] = config_service.requests
    assert fetch.headers["vmprep-attestation"].startswith("aws-iid ")


def test_a_metadata_service_that_is_down_is_reported(
    prefix: Prefix, clouds: Clouds, config_service: Server
) -> None:
    for fake in serve_metadata(FakeMetadata(clouds, "aws", "i-0", fail=503)):
        state = run(prefix, fake.base, config_service)
    assert state["error"]["code"] == "attestation_unavailable", state
    assert "HTTP 503" in state["error"]["message"]
    assert config_service.requests == []
