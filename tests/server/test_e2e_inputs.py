"""One image, many roles (issue 20), end to end: `examples/one-image-many-roles.yaml` rendered
once; the real agent (`python -I agent.pyz run`) takes its role from a fake Azure IMDS, EC2
IMDSv2 or GCE metadata server on 127.0.0.1 and fetches that role's document from a real
`vmprep serve`; a refused value applies nothing and is reported."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.agent.net.conftest import Reply, Server
from tests.server.test_e2e_agent import UUID_A, Fleet, Machine, appender
from vmprep.render.build import render
from vmprep.spec import load_spec

pytestmark = pytest.mark.slow
EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "one-image-many-roles.yaml"


@pytest.fixture(scope="module")
def rendered_inputs() -> dict[str, Any]:
    """The `inputs` of the example's agent.json, as `vmprep render` writes it."""
    result = render(load_spec(EXAMPLE), environ={"VMPREP_ADMIN_PASSWORD": "x-Example-1"})
    agent_json = next(v for k, v in result.files.items() if k.endswith("agent.json"))
    inputs: dict[str, Any] = json.loads(agent_json)["inputs"]
    return inputs


@pytest.fixture(scope="module")
def agent_pyz(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from vmprep.render.payload import build_payload

    path = tmp_path_factory.mktemp("payload") / "agent.pyz"
    path.write_bytes(build_payload())
    return path


@pytest.fixture
def metadata() -> Iterator[Server]:
    srv = Server()
    yield srv
    srv.close()


class DeployedMachine(Machine):
    def __init__(self, *args: Any, inputs: dict[str, Any], metadata: Server, **kw: Any):
        super().__init__(*args, **kw)
        self.inputs, self.metadata = inputs, metadata

    def config(self) -> dict[str, Any]:
        cfg = super().config()
        base = self.metadata.url("")
        cfg["inputs"] = {**self.inputs, "file": str(self.root / "inputs.txt")}
        cfg["endpoints"] = {"azure-imds": base, "ec2-imds": base, "gce-metadata": base}
        cfg["platform_options"]["vmtoolsd"] = "/nonexistent/vmtoolsd"
        return cfg


@pytest.fixture
def fleet(tmp_path, serve_process) -> Iterator[Fleet]:
    out = tmp_path / "out"
    fleet = Fleet(tmp_path / "server", serve_process, [appender("web-step", out)])
    sql = json.loads((fleet.configs / "web.yaml").read_text())
    sql.update(role="sql", steps=[appender("sql-step", out)])
    (fleet.configs / "sql.yaml").write_text(json.dumps(sql))
    fleet.start()
    yield fleet
    fleet.stop()


def azure(tags: dict[str, str]) -> Reply:
    compute = {"tagsList": [{"name": k, "value": v} for k, v in tags.items()], "userData": ""}
    return Reply(200, json.dumps(compute).encode())


def machine(tmp_path, fleet, metadata, rendered_inputs, agent_pyz) -> DeployedMachine:
    m = DeployedMachine(
        tmp_path / "vm", agent_pyz, fleet, UUID_A, inputs=rendered_inputs, metadata=metadata
    )
    m.out = tmp_path / "out"
    return m


@pytest.mark.parametrize(
    ("platform", "role"),
    [("azure", "web"), ("azure", "sql"), ("aws", "sql"), ("gce", "sql"), ("gce", "web")],
)
def test_the_same_image_becomes_the_role_its_platform_says(
    tmp_path, fleet, metadata, rendered_inputs, agent_pyz, platform, role
):
    if platform == "azure":
        metadata.route(
            "/metadata/instance/compute?api-version=2021-02-01", azure({"vmprep-role": role})
        )
    elif platform == "aws":
        metadata.route("/latest/api/token", Reply(200, b"t"))
        metadata.route("/latest/meta-data/tags/instance/vmprep-role", Reply(200, role.encode()))
        metadata.route("/latest/meta-data/tags/instance/vmprep-site", Reply(200, b"fra1"))
    else:
        metadata.route(
            "/computeMetadata/v1/instance/attributes/vmprep-role", Reply(200, role.encode())
        )
    m = machine(tmp_path, fleet, metadata, rendered_inputs, agent_pyz)
    assert m.run() == 0
    assert m.lines() == [f"{role}-step"]
    state = m.local_state()
    source = {"azure": "azure-tags", "aws": "aws-tags", "gce": "gce-attributes"}[platform]
    assert state["inputs"]["role"] == {"value": role, "source": source}
    report = fleet.stored(UUID_A)["reports"][0]["report"]
    assert report["role"] == role
    assert report["inputs"]["role"]["source"] == source
    site = "fra1" if platform == "aws" else "ams1"
    assert state["inputs"]["site"]["value"] == site


def test_a_local_file_decides_when_no_cloud_answers(
    tmp_path, fleet, metadata, rendered_inputs, agent_pyz
):
    m = machine(tmp_path, fleet, metadata, rendered_inputs, agent_pyz)
    (m.root).mkdir(parents=True, exist_ok=True)
    (m.root / "inputs.txt").write_text("[vmprep]\nrole = sql\n")
    assert m.run() == 0
    assert m.lines() == ["sql-step"]


@pytest.mark.parametrize(
    "tag", ["oracle", "sql\u202e", "x" * 5000, base64.b64encode(b"\x00\x01").decode() + "\x07"]
)
def test_a_refused_value_applies_nothing_and_is_reported(
    tmp_path, fleet, metadata, rendered_inputs, agent_pyz, tag
):
    metadata.route("/metadata/instance/compute?api-version=2021-02-01", azure({"vmprep-role": tag}))
    m = machine(tmp_path, fleet, metadata, rendered_inputs, agent_pyz)
    assert m.run() == 1
    assert m.lines() == []
    state = m.local_state()
    assert state["state"] == "failed"
    assert state["error"]["code"] == "invalid_input"
    assert "azure-tags" in state["error"]["message"]
    assert "inputs" not in state
    report = fleet.stored(UUID_A)["reports"][0]["report"]
    assert report["error"]["code"] == "invalid_input"


def test_no_role_anywhere_stops_with_input_missing(
    tmp_path, fleet, metadata, rendered_inputs, agent_pyz
):
    m = machine(tmp_path, fleet, metadata, rendered_inputs, agent_pyz)
    assert m.run() == 1
    assert m.lines() == []
    assert m.local_state()["error"]["code"] == "input_missing"
