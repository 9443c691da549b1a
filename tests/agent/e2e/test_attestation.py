"""The real agent (agent.pyz in a subprocess) with attestation against a loopback fake metadata
service: the evidence rides along with every config fetch of every boot, and a metadata
service that goes away mid-document leaves the run unfinished rather than done."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.agent.e2e.conftest import UUID, Service, appender
from tests.attestation_fakes import Clouds, FakeMetadata, serve_metadata


@pytest.fixture(scope="module")
def clouds() -> Clouds:
    return Clouds.make()


@pytest.fixture
def aws(clouds: Clouds) -> Iterator[FakeMetadata]:
    yield from serve_metadata(FakeMetadata(clouds, "aws", UUID))


def lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


def test_evidence_goes_with_every_fetch_and_an_outage_leaves_the_document_unfinished(
    machine, service: Service, aws: FakeMetadata, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    service.publish([appender("r1", out), {"id": "rb", "reboot": {}}, appender("r2", out)])
    ph = service.phone_home(attestation="aws-iid", metadata_url=aws.base)
    m = machine([], phone_home=ph)
    assert m.run().returncode == 2  # restarting after rb
    assert service.fetches[-1]["Vmprep-Attestation"].startswith("aws-iid ")

    aws.fail = 503
    m.reboot()
    result = m.run()
    assert result.returncode == 2, result.stderr  # not done: r2 is still to run
    state = m.state()
    assert (state["state"], state["error"]["code"]) == ("running", "attestation_unavailable")
    log = (m.state_dir / "logs" / "agent.log").read_text()
    assert "metadata service answered HTTP 503" in log

    aws.fail = None
    m.reboot()
    assert m.run().returncode == 0
    assert lines(out) == ["r1", "r2"]
    fetched = [f for f in service.fetches if f["path"].startswith("/v1/config/")]
    assert all(f["Vmprep-Attestation"].startswith("aws-iid ") for f in fetched)
    # The document is a credential: nowhere in the agent's files.
    token = fetched[0]["Vmprep-Attestation"].split(" ", 1)[1]
    assert token[:40] not in m.all_files_text()
