"""Issue #15 end to end: the real agent (`python -I agent.pyz run`, the payload render builds)
against the real `vmprep serve`, whose role has `attestation: required` and a secret, with a
loopback fake metadata service signing Azure attested documents with a test CA the service
trusts. An attested instance gets the secret; with the metadata service lying (another vmId)
or with attestation off, the instance gets nothing, and the report and log say why."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.attestation_fakes import FakeMetadata, serve_metadata
from tests.server.attestation_setup import clouds, write_anchors
from tests.server.test_e2e_agent import (  # the fleet and machines of the agent e2e tests
    FLEET,
    SITE_KEY,
    UUID_A,
    UUID_B,
    Fleet,
    Machine,
    appender,
    latest,
)
from vmprep.server.store import SqliteStore

pytestmark = pytest.mark.slow


class AttestedFleet(Fleet):
    """`vmprep serve` trusting the test clouds; its role `web` requires attestation."""

    def __init__(self, tmp: Path, serve_process: Any, steps: list[dict[str, Any]]) -> None:
        super().__init__(tmp, serve_process, steps)
        role = json.loads((self.configs / "web.yaml").read_text())
        role["attestation"] = "required"
        role["attestation_allow"] = {"subscriptions": ["8d10da13-8125-4ba9-a717-bf7490507b3d"]}
        (self.configs / "web.yaml").write_text(json.dumps(role))
        self.anchors = write_anchors(tmp / "anchors", clouds())

    def start(self, *keys: str) -> None:
        args = ["--configs", str(self.configs), "--data-dir", str(self.data), "--poll", "0"]
        args += ["--tokens", str(self.tmp / "tokens"), "--key", str(self.tmp / "old.pem")]
        args += ["--attestation-anchors", str(self.anchors)]
        self.server = self.serve_process(args, env={"E2E_SITE_KEY": SITE_KEY})
        self.server.start()


class AzureMachine(Machine):
    """An Azure instance whose agent.json says `attestation: azure-imds` (what render writes
    for `image.platform: azure`), its metadata service at `metadata`."""

    def __init__(self, *args: Any, metadata: str, attestation: str = "azure-imds", **kw: Any):
        super().__init__(*args, **kw)
        self.metadata, self.attestation = metadata, attestation

    def config(self) -> dict[str, Any]:
        cfg = super().config()
        cfg["phone_home"]["attestation"] = self.attestation
        cfg["phone_home"]["metadata_url"] = self.metadata
        cfg["phone_home"]["retry"] = {"attempts": 3, "initial": "100ms", "max": "300ms"}
        return cfg

    def log(self) -> str:
        return (self.root / "vmprep" / "logs" / "agent.log").read_text()

    def all_files(self) -> str:
        return "".join(
            p.read_text(errors="replace") for p in (self.root / "vmprep").rglob("*") if p.is_file()
        )


@pytest.fixture(scope="module")
def agent_pyz(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from vmprep.render.payload import build_payload

    path = tmp_path_factory.mktemp("payload") / "agent.pyz"
    path.write_bytes(build_payload())
    return path


@pytest.fixture
def azure() -> Iterator[FakeMetadata]:
    yield from serve_metadata(FakeMetadata(clouds(), "azure", UUID_A))


@pytest.fixture
def world(tmp_path: Path, serve_process: Any, agent_pyz: Path, azure: FakeMetadata):
    out = tmp_path / "a" / "out"
    fleet = AttestedFleet(tmp_path / "server", serve_process, [appender("secret-step", out)])
    fleet.start()

    def machine(**kw: Any) -> AzureMachine:
        return AzureMachine(tmp_path / "a", agent_pyz, fleet, UUID_A, metadata=azure.base, **kw)

    return fleet, machine


def attestation_of(fleet: Fleet, instance_id: str) -> Any:
    store = SqliteStore(fleet.data)
    try:
        return store.attestation(instance_id)
    finally:
        store.close()


def test_an_attested_instance_gets_the_secret(world, azure: FakeMetadata) -> None:
    fleet, machine = world
    m = machine()
    assert m.run() == 0, m.log()
    assert m.lines() == ["secret-step"]  # the step ran with K = the role's secret
    assert m.local_state()["state"] == "done"
    nonce = azure.requests[-1].query["nonce"][0]
    assert len(nonce) == 10
    assert nonce.isdigit()
    record = attestation_of(fleet, UUID_A)
    assert (record.kind, record.attested_id, record.role) == ("azure-imds", UUID_A, "web")
    assert record.scope == "8d10da13-8125-4ba9-a717-bf7490507b3d"
    view = fleet.stored(UUID_A)
    assert view is not None
    assert latest(view)["state"] == "done"
    assert SITE_KEY not in m.all_files()
    assert FLEET not in m.log()


def test_a_lying_metadata_service_gets_nothing_and_the_report_says_why(
    world, azure: FakeMetadata
) -> None:
    fleet, machine = world
    azure.instance_id = UUID_B  # IMDS vouches for another VM (a copied image elsewhere)
    m = machine()
    m.run()
    assert m.lines() == []  # nothing of the role ran, no secret reached a step
    state = m.local_state()
    assert state["error"]["code"] == "attestation_mismatch", state
    assert "attestation-mismatch" in m.log()
    assert SITE_KEY not in m.all_files()
    view = fleet.stored(UUID_A)
    assert view is not None
    assert latest(view)["error"]["code"] == "attestation_mismatch"
    assert attestation_of(fleet, UUID_A) is None


def test_an_image_that_does_not_attest_is_told_attestation_is_required(
    world, azure: FakeMetadata
) -> None:
    fleet, machine = world
    m = machine(attestation="off")
    m.run()
    assert m.lines() == []
    assert m.local_state()["error"]["code"] == "attestation_required"
    assert azure.requests == []  # the metadata service was not asked
    view = fleet.stored(UUID_A)
    assert view is not None
    assert latest(view)["error"]["code"] == "attestation_required"
