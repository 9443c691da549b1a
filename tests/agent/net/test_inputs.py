"""Deploy-time inputs (issue 20): each source against a fake metadata service on 127.0.0.1,
and hostile values refused with an error naming the key and the source."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.agent.net.conftest import Reply, Server, free_port
from vmprep.agent.inputs import (
    InputError,
    Sources,
    check_value,
    guestinfo_argv,
    parse_section,
    resolve,
)

AZURE = "/metadata/instance/compute?api-version=2021-02-01"
ROLES = {"values": ["web", "sql"], "default": "web"}


def decl(*sources: str, **keys: dict[str, Any]) -> dict[str, Any]:
    return {"sources": list(sources), "keys": keys or {"role": ROLES}}


def sources(server: Server | None = None, **kwargs: Any) -> Sources:
    base = server.url("") if server else f"http://127.0.0.1:{free_port()}"  # nobody there
    endpoints = {"azure-imds": base, "ec2-imds": base, "gce-metadata": base}
    return Sources(timeout=2.0, endpoints=endpoints, **kwargs)


def decide(d: dict[str, Any], src: Sources) -> dict[str, Any]:
    log: list[str] = []
    got = resolve(d, src, log.append)
    return got


def azure(tags: dict[str, str] | None = None, user_data: bytes | None = None) -> Reply:
    compute: dict[str, Any] = {
        "vmId": "4f2c9a1e-0000-4000-8000-00155d010203",
        "tagsList": [{"name": k, "value": v} for k, v in (tags or {}).items()],
        "userData": base64.b64encode(user_data or b"").decode(),
    }
    return Reply(200, json.dumps(compute).encode(), headers=[("Content-Type", "application/json")])


# -- each platform ---------------------------------------------------------------------------
@pytest.mark.parametrize("role", ["web", "sql"])
def test_azure_tags_decide_the_role(server: Server, role: str):
    server.route(AZURE, azure({"vmprep-role": role, "Owner": "ops"}))
    got = decide(decl("azure-tags"), sources(server))
    assert got == {"role": {"value": role, "source": "azure-tags"}}
    assert server.requests[0].headers["metadata"] == "true"


def test_azure_tag_names_ignore_case_as_azure_does(server: Server):
    server.route(AZURE, azure({"VMPrep-Role": "sql"}))
    assert decide(decl("azure-tags"), sources(server))["role"]["value"] == "sql"


def test_azure_user_data_section_and_one_request_for_both_azure_sources(server: Server):
    data = b"#!/bin/sh\necho other tool\n[vmprep]\nrole = sql\nsite=fra1\n[other]\nrole=x\n"
    server.route(AZURE, azure(user_data=data))
    site = {"pattern": "[a-z]{3}[0-9]", "default": "ams1"}
    got = decide(decl("azure-tags", "azure-user-data", role=ROLES, site=site), sources(server))
    assert got == {
        "role": {"value": "sql", "source": "azure-user-data"},
        "site": {"value": "fra1", "source": "azure-user-data"},
    }
    assert len(server.requests) == 1


def test_azure_custom_data_file(tmp_path: Path):
    (tmp_path / "AzureData").mkdir()
    (tmp_path / "AzureData" / "CustomData.bin").write_bytes(b"[vmprep]\nrole=sql\n")
    src = sources(options={"sys_root": str(tmp_path)})
    assert decide(decl("azure-custom-data"), src)["role"]["source"] == "azure-custom-data"


def test_aws_tags_through_imdsv2(server: Server):
    server.route("/latest/api/token", Reply(200, b"tok-123"))
    server.route("/latest/meta-data/tags/instance/vmprep-role", Reply(200, b"sql"))
    got = decide(decl("aws-tags"), sources(server))
    assert got == {"role": {"value": "sql", "source": "aws-tags"}}
    token, tag = server.requests
    assert token.method == "PUT"
    assert token.headers["x-aws-ec2-metadata-token-ttl-seconds"] == "300"
    assert tag.headers["x-aws-ec2-metadata-token"] == "tok-123"


def test_aws_user_data(server: Server):
    server.route("/latest/api/token", Reply(200, b"tok"))
    server.route(
        "/latest/user-data", Reply(200, b"<powershell>\n</powershell>\n[vmprep]\nrole=sql")
    )
    assert decide(decl("aws-tags", "aws-user-data"), sources(server))["role"] == {
        "value": "sql",
        "source": "aws-user-data",
    }


def test_gce_attributes_with_the_metadata_flavor_header(server: Server):
    server.route("/computeMetadata/v1/instance/attributes/vmprep-role", Reply(200, b"sql"))
    assert decide(decl("gce-attributes"), sources(server))["role"]["value"] == "sql"
    assert server.requests[0].headers["metadata-flavor"] == "Google"


def test_vmware_guestinfo_through_vmtoolsd(tmp_path: Path):
    tool = tmp_path / "vmtoolsd"
    calls = tmp_path / "calls"
    tool.write_text(
        f'#!/bin/sh\necho "$@" >> "{calls}"\n'
        '[ "$2" = "info-get guestinfo.vmprep-role" ] && { echo sql; exit 0; }\nexit 1\n'
    )
    tool.chmod(0o755)
    src = sources(options={"vmtoolsd": str(tool)})
    assert decide(decl("vmware-guestinfo"), src)["role"]["value"] == "sql"
    assert guestinfo_argv("vmtoolsd.exe", "role") == [
        "vmtoolsd.exe",
        "--cmd",
        "info-get guestinfo.vmprep-role",
    ]


def test_a_local_file(tmp_path: Path):
    path = tmp_path / "inputs.txt"
    path.write_text("; written by the clone script\n[vmprep]\nrole = sql\n")
    assert decide(decl("file"), sources(file=str(path)))["role"]["value"] == "sql"


# -- order, defaults, absence ------------------------------------------------------------------
def test_the_first_source_that_has_a_key_decides_it(server: Server, tmp_path: Path):
    server.route(AZURE, azure({"vmprep-role": "sql"}))
    path = tmp_path / "inputs.txt"
    path.write_text("[vmprep]\nrole=web\n")
    got = decide(decl("file", "azure-tags"), sources(server, file=str(path)))
    assert got["role"] == {"value": "web", "source": "file"}


def test_sources_that_are_not_there_are_skipped_for_the_default():
    got = decide(decl("azure-tags", "aws-tags", "gce-attributes", "hyperv-kvp"), sources())
    assert got == {"role": {"value": "web", "source": "default"}}


def test_a_required_key_no_source_has_stops_with_input_missing():
    with pytest.raises(InputError, match="'role' is required") as caught:
        decide(decl("gce-attributes", role={"values": ["web"], "required": True}), sources())
    assert caught.value.code == "input_missing"


# -- hostile and careless values -------------------------------------------------------------
@pytest.mark.parametrize(
    ("reply", "message"),
    [
        (Reply(200, b"oracle"), "'oracle' is not one of the values"),
        (Reply(200, b"w" * 300), "300 characters"),
        (Reply(200, b"web\x1b[31m"), r"U\+001B"),
        (Reply(200, "web\u202e".encode()), r"U\+202E"),
        (Reply(200, b"\xff\xfeweb"), "not UTF-8"),
        (Reply(200, b""), "empty"),
    ],
)
def test_refused_values_name_the_key_and_the_source(server: Server, reply: Reply, message: str):
    server.route("/computeMetadata/v1/instance/attributes/vmprep-role", reply)
    with pytest.raises(InputError, match=message) as caught:
        decide(decl("gce-attributes"), sources(server))
    assert caught.value.code == "invalid_input"
    assert "gce-attributes" in str(caught.value)


def test_an_oversized_answer_is_refused(server: Server):
    server.route("/computeMetadata/v1/instance/attributes/vmprep-role", Reply(200, b"x" * 300_000))
    with pytest.raises(InputError):
        decide(decl("gce-attributes"), sources(server))


def test_a_key_the_image_does_not_declare_is_refused_not_applied(tmp_path: Path):
    path = tmp_path / "inputs.txt"
    path.write_text("[vmprep]\nrole=web\nphone_home_url=https://evil.example/\n")
    with pytest.raises(InputError, match="'phone_home_url', which this image does not declare"):
        decide(decl("file"), sources(file=str(path)))


def test_user_data_of_another_tool_is_left_alone(server: Server):
    server.route("/latest/api/token", Reply(200, b"tok"))
    server.route("/latest/user-data", Reply(200, b"\x1f\x8b\x08\x00gzip of cloud-init"))
    got = decide(decl("aws-user-data"), sources(server))
    assert got == {"role": {"value": "web", "source": "default"}}


def test_a_malformed_vmprep_section_is_refused():
    with pytest.raises(InputError, match="line 3 of the \\[vmprep\\] section"):
        parse_section("[vmprep]\nrole=web\nthis is not a pair\n", "file")
    with pytest.raises(InputError, match="set twice"):
        parse_section("[vmprep]\nrole=web\nrole=sql\n", "file")


@given(st.text(max_size=300))
def test_text_outside_the_section_never_matters(other: str):
    other = "\n".join(line for line in other.splitlines() if not line.strip().startswith("["))
    assert parse_section(other + "\n[vmprep]\nrole = web\n", "x") == {"role": "web"}


@given(st.characters(categories=["Cc", "Cf"]))
def test_no_control_or_format_character_passes(ch: str):
    with pytest.raises(InputError, match="control or format"):
        check_value("site", f"a{ch}b", {"pattern": ".*"}, "file")


@given(st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._-]{0,40}", fullmatch=True))
def test_any_allowed_role_name_passes_and_pattern_is_a_full_match(role: str):
    assert check_value("role", role, {"pattern": r"[A-Za-z0-9._-]+"}, "x") == role
    if not role.endswith(".sig"):
        with pytest.raises(InputError):
            check_value("role", role + "!", {"pattern": r"[A-Za-z0-9._-]+"}, "x")
