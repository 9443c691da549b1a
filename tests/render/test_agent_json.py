from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.render.conftest import ENV, SPECS, base_doc, spec_from
from vmprep import __version__
from vmprep.render import RenderError, render
from vmprep.render.secrets import find_refs
from vmprep.spec import load_spec

AGENT_JSON = "ProgramData/vmprep/agent.json"


def agent_json(spec, environ=ENV) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(render(spec, environ=environ).files[AGENT_JSON])
    return loaded


def test_agent_json_has_the_documented_shape() -> None:
    doc = agent_json(load_spec(SPECS / "full.yaml"))
    assert list(doc) == [
        "format", "vmprep_version", "image", "install_dir", "runtime", "identity", "variables",
        "keep_answer_files", "answer_files", "delete_answer_files", "log_level", "phone_home",
        "steps", "secrets", "baked_secrets",
    ]  # fmt: skip
    assert doc["format"] == 1
    assert doc["vmprep_version"] == __version__
    assert doc["image"] == {
        "name": "web-frontend",
        "os": "windows-server-2022",
        "architecture": "amd64",
        "platform": "generic",  # always present: the contract with the agent
    }
    assert doc["install_dir"] == "C:\\ProgramData\\vmprep"
    assert doc["runtime"] == {
        "python": "C:\\Program Files\\Python312\\python.exe",
        "bundled": False,
    }
    assert doc["answer_files"] == [
        "C:\\Windows\\Panther\\unattend*.xml",
        "C:\\Windows\\System32\\Sysprep\\unattend.xml",
    ]
    assert doc["delete_answer_files"] == "done"  # full.yaml logs on automatically
    assert doc["phone_home"]["url"] == ["https://config.example.com/v1/config/{role}/{instance_id}"]
    assert doc["phone_home"]["on_unreachable"] == "continue"  # defaults are filled in
    assert [step["id"] for step in doc["steps"]] == [
        "tools",
        "fetch-config",
        "install-tools",
        "iis",
        "run",
        "warmup",
    ]
    assert doc["steps"][5]["timeout"] == "10m"  # durations as written
    assert doc["steps"][3]["run"] == "once_per_instance"


def test_references_stay_as_written_with_values_in_the_secrets_map() -> None:
    doc = agent_json(load_spec(SPECS / "full.yaml"))
    assert doc["phone_home"]["token"] == {"env": "VMPREP_TEST_TOKEN"}
    assert doc["steps"][0]["download"]["headers"]["Authorization"] == {"env": "VMPREP_TEST_TOKEN"}
    assert doc["secrets"] == {"env:VMPREP_TEST_TOKEN": "tok"}
    # a boot-time secret stays a reference, with no value baked in
    assert doc["steps"][2]["msi"]["properties"]["PASSWORD"] == {"secret": "tools_pw"}
    # an exec environment variable called `file` is data, not a reference
    assert doc["steps"][4]["exec"]["env"] == {"file": "not-a-secret-reference"}
    # unattend passwords are not copied into agent.json
    assert ENV["VMPREP_TEST_ADMIN"] not in json.dumps(doc)


def test_no_phone_home_is_null(tmp_path: Path) -> None:
    assert agent_json(spec_from(tmp_path, base_doc()))["phone_home"] is None


def test_file_secret_is_relative_to_the_spec_and_named_as_written(tmp_path: Path) -> None:
    (tmp_path / "s").mkdir()
    (tmp_path / "s" / "token.txt").write_bytes(b"t0ken\r\n")
    doc = base_doc()
    doc["agent"]["steps"] = [
        {"id": "e", "env": {"name": "TOKEN", "value": {"file": "s/token.txt"}}}
    ]
    result = agent_json(spec_from(tmp_path, doc))
    assert result["steps"][0]["env"]["value"] == {"file": "s/token.txt"}
    assert result["secrets"] == {"file:s/token.txt": "t0ken"}


def test_every_missing_secret_is_reported_with_its_line(tmp_path: Path) -> None:
    doc = base_doc()
    doc["setup"]["accounts"] = [{"name": "d", "password": {"file": "missing.txt"}}]
    spec = spec_from(tmp_path, doc)
    with pytest.raises(RenderError) as caught:
        render(spec, environ={})
    messages = [(p.line, p.column, p.message) for p in caught.value.problems]
    admin = spec.position(("setup", "administrator", "password"))
    account = spec.position(("setup", "accounts", 0, "password"))
    assert messages[0] == (
        *admin,
        "{env: VMPREP_TEST_ADMIN}: the environment variable VMPREP_TEST_ADMIN is not set",
    )
    assert messages[1][:2] == account
    assert messages[1][2].startswith("{file: missing.txt}: cannot read ")
    assert str(caught.value).startswith(f"{spec.path}:{admin[0]}:{admin[1]}: error: ")


def test_secret_refs_are_found_by_schema_position_only() -> None:
    spec = load_spec(SPECS / "full.yaml")
    assert [(ref.path, ref.name) for ref in find_refs(spec)] == [
        (("setup", "administrator", "password"), "env:VMPREP_TEST_ADMIN"),
        (("setup", "accounts", 0, "password"), "file:secrets/deploy.txt"),
        (("agent", "phone_home", "token"), "env:VMPREP_TEST_TOKEN"),
        (("agent", "steps", 0, "download", "headers", "Authorization"), "env:VMPREP_TEST_TOKEN"),
        (("agent", "steps", 2, "msi", "properties", "PASSWORD"), "tools_pw"),
    ]


def test_the_agent_accepts_what_render_writes(tmp_path: Path) -> None:
    from vmprep.agent.config import load_config
    from vmprep.agent.secrets import ref_name
    from vmprep.agent.stepcheck import check_steps

    path = tmp_path / "agent.json"
    path.write_bytes(render(load_spec(SPECS / "full.yaml"), environ=ENV).files[AGENT_JSON])
    config = load_config(path)
    assert check_steps(config.steps) == []
    assert config.phone_home is not None
    token = config.phone_home["token"]
    assert config.secrets[ref_name(token)] == "tok"


@pytest.mark.parametrize(
    ("setup", "when"),
    [
        ({}, "launch"),
        ({"first_logon_commands": [{"command": "cmd /c echo"}]}, "done"),
        ({"auto_logon": {"user": "Administrator"}}, "done"),
    ],
)
def test_answer_files_go_at_launch_unless_the_first_logon_needs_them(
    tmp_path: Path, setup: dict[str, Any], when: str
) -> None:
    doc = base_doc()
    doc.setdefault("setup", {}).update(setup)
    assert agent_json(spec_from(tmp_path, doc))["delete_answer_files"] == when


def test_baked_secrets_name_what_the_baked_steps_take_from_phone_home() -> None:
    from tests.conftest import ROOT

    doc = agent_json(load_spec(ROOT / "examples" / "domain-joined.yaml"))
    assert doc["baked_secrets"] == ["join_password", "join_user", "svc_app_password"]
    assert agent_json(load_spec(ROOT / "examples" / "minimal.yaml"))["baked_secrets"] == []


@pytest.mark.parametrize(
    ("platform", "setting", "kind"),
    [
        ("azure", None, "azure-imds"),
        ("aws", "auto", "aws-iid"),
        ("gce", None, "gce-iit"),
        ("generic", None, "off"),
        ("vmware", "auto", "off"),
        ("azure", "off", "off"),
        ("hyperv", "gce-iit", "gce-iit"),
    ],
)
def test_agent_json_says_which_attestation_the_agent_sends(
    tmp_path: Path, platform: str, setting: str | None, kind: str
) -> None:
    doc = base_doc()
    doc["image"]["platform"] = platform
    if platform in ("azure", "aws", "gce"):
        del doc["setup"]["administrator"]  # the cloud's own provisioning sets it
    home = {
        "url": "https://cfg.example.com/v1/config/{role}/{instance_id}",
        "role": "web",
        "trusted_keys": ["ed25519:11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo="],
    }
    if setting is not None:
        home["attestation"] = setting
    doc["agent"]["phone_home"] = home
    assert agent_json(spec_from(tmp_path, doc))["phone_home"]["attestation"] == kind


@pytest.mark.parametrize(
    ("platform", "written", "sources"),
    [
        ("gce", None, ["gce-metadata", "azure-imds", "ec2-imds", "smbios-uuid", "mac"]),
        ("gce", ["smbios-uuid"], ["smbios-uuid"]),  # as written: the check warns instead
        ("aws", None, ["azure-imds", "ec2-imds", "smbios-uuid", "mac"]),
    ],
)
def test_gce_images_identify_by_the_id_gce_attests(
    tmp_path: Path, platform: str, written: list[str] | None, sources: list[str]
) -> None:
    doc = base_doc()
    doc["image"]["platform"] = platform
    del doc["setup"]["administrator"]
    if written is not None:
        doc["agent"]["identity"] = written
    assert agent_json(spec_from(tmp_path, doc))["identity"] == sources
