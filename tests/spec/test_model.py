"""The Spec API that render, sysprep and the server call."""

from __future__ import annotations

import hashlib

import pytest

from tests.conftest import EXAMPLES
from vmprep.errors import ExitCode
from vmprep.spec import SpecError, definition_for, load_role_config, load_spec
from vmprep.spec.defaults import apply_defaults

ROLE = "version: 1\nkind: RoleConfig\nrole: web\nsteps: [{id: a, reboot: {}}]\n"


def test_load_spec_fills_defaults_and_keeps_positions():
    path = EXAMPLES / "web-role.yaml"
    spec = load_spec(path)
    assert spec.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert spec.sysprep["generalize"] is True
    assert spec.setup["oobe"]["network_location"] == "Work"
    assert spec.agent["steps"][0]["reboot_budget"] == 3
    assert spec.image == {
        "name": "web-frontend",
        "os": "windows-server-2022",
        "architecture": "amd64",
        "platform": "generic",
    }
    assert spec.position(("agent", "steps", 1, "download", "url")) == (47, 9)
    assert spec.data["version"] == 1


def test_load_spec_raises_with_every_error(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "version: 1\nimage: {name: t}\n"
        "setup: {computer_name: A.B, timezone: CET, administrator: {password: {env: P}}}\n"
    )
    with pytest.raises(SpecError) as info:
        load_spec(bad)
    assert [p.code for p in info.value.problems] == ["computer-name", "timezone"]
    assert info.value.exit_code == ExitCode.PROBLEMS
    text = str(info.value)  # every problem, each with its hint, as `render` prints them
    assert "(computer-name)" in text
    assert "(timezone)" in text
    assert "more)" not in text


def test_warnings_do_not_stop_load_spec():
    assert load_spec(EXAMPLES / "minimal.yaml").setup["administrator"]["password"] == {
        "env": "VMPREP_ADMIN_PASSWORD"
    }


def test_kind_dispatch(tmp_path):
    role = tmp_path / "web.yaml"
    role.write_text(ROLE)
    assert definition_for({"kind": "RoleConfig"}) == "roleConfig"
    assert definition_for({"version": 1}) is None
    config = load_role_config(role)
    assert config["steps"][0]["run"] == "once_per_instance"
    assert config["ttl"] == "1h"
    with pytest.raises(SpecError, match="config-repository file, not a spec"):
        load_spec(role)
    with pytest.raises(SpecError, match="a spec, not a RoleConfig"):
        load_role_config(EXAMPLES / "web-role.yaml")


def test_unreadable_files_raise_spec_error(tmp_path):
    with pytest.raises(SpecError, match="cannot read"):
        load_spec(tmp_path / "missing.yaml")


def test_apply_defaults_for_one_definition_copies_deeply():
    step = {"id": "a", "exec": {"argv": ["x"]}}
    filled = apply_defaults(step, "step")
    assert filled["exec"]["success_exit_codes"] == [0]
    assert filled["run"] == "once_per_instance"
    assert step == {"id": "a", "exec": {"argv": ["x"]}}
    filled["exec"]["success_exit_codes"].append(1)
    assert apply_defaults(step, "step")["exec"]["success_exit_codes"] == [0]


def test_check_data_checks_parsed_documents_without_positions():
    from vmprep.spec.pipeline import check_data

    assert check_data({"version": 1, "kind": "RoleConfig", "role": "web"}) == []
    admin = {"password": {"env": "P"}}
    setup = {"timezone": "CET", "administrator": admin}
    problems = check_data({"version": 1, "image": {"name": "t"}, "setup": setup})
    (problem,) = [p for p in problems if p.is_error]
    assert (problem.code, problem.line, problem.path) == ("timezone", 0, ("setup", "timezone"))
