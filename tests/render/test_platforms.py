"""`render` per `image.platform`: which files, which hook, which baked steps (golden + rules).

Each test names the platform rule it checks; the rules and their sources are in
vmprep/spec/platforms.py and docs/platforms/<name>.md.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from tests.conftest import EXAMPLES
from tests.render.conftest import GOLDEN, base_doc, check_golden, spec_from
from vmprep.render import render
from vmprep.render.hooks import TASK_NS
from vmprep.render.platformsteps import TZUTIL
from vmprep.spec import load_spec

PLATFORMS = EXAMPLES / "platforms"
ENV: dict[str, str] = {}
HOOKS = {
    "azure": ["Windows/OEM/SetupComplete2.cmd"],
    "aws": ["ProgramData/vmprep/firstboot.cmd", "ProgramData/vmprep/ec2launch-task.json"],
    "gce": ["ProgramData/vmprep/firstboot.cmd", "ProgramData/vmprep/firstboot-task.xml"],
}


def rendered(name: str):
    return render(load_spec(PLATFORMS / f"{name}.yaml"), environ=ENV)


def agent_json(result) -> dict:
    return json.loads(result.files["ProgramData/vmprep/agent.json"])


@pytest.mark.parametrize("name", sorted(HOOKS))
def test_cloud_hook_files_match_golden(name: str) -> None:
    result = rendered(name)
    for rel in HOOKS[name]:
        check_golden(result.files[rel], GOLDEN / f"platform-{name}.{rel.rsplit('/', 1)[1]}")
    listing = "".join(f"{rel}\n" for rel in sorted(result.files))
    check_golden(listing.encode(), GOLDEN / f"platform-{name}.files.txt")


@pytest.mark.parametrize("name", sorted(HOOKS))
def test_rule_no_answer_file_on_clouds(name: str) -> None:
    """azure: custom answer files are not supported; aws/gce: EC2Launch/GCESysprep bring theirs."""
    result = rendered(name)
    assert not [rel for rel in result.files if rel.casefold().endswith("unattend.xml")]
    assert "Windows/Setup/Scripts/SetupComplete.cmd" not in result.files
    assert result.settings == []
    assert result.manifest["platform"]["name"] == name
    assert "no answer file of vmprep's" in result.manifest["platform"]["flow"][0]


@pytest.mark.parametrize("name", ["generic", "hyperv", "vmware"])
def test_rule_hypervisors_keep_the_answer_file_and_setupcomplete(tmp_path: Path, name: str):
    doc = base_doc()
    doc["image"]["platform"] = name
    result = render(spec_from(tmp_path, doc), environ={"VMPREP_TEST_ADMIN": "x"})
    (tmp_path / "g").mkdir()
    same = render(spec_from(tmp_path / "g", base_doc()), environ={"VMPREP_TEST_ADMIN": "x"})
    for rel in ("Windows/Panther/unattend.xml", "Windows/Setup/Scripts/SetupComplete.cmd"):
        assert result.files[rel] == same.files[rel]
    assert agent_json(result)["image"]["platform"] == name


def test_rule_azure_setupcomplete2_is_a_called_launcher() -> None:
    """Azure's SetupComplete.cmd CALLs %WINDIR%\\OEM\\SetupComplete2.cmd: ours must return with
    `exit /b` (a bare `exit` would end Azure's script too) and hold no spec value but paths."""
    text = rendered("azure").files["Windows/OEM/SetupComplete2.cmd"].decode("ascii")
    lines = text.split("\r\n")
    assert lines[-2] == "exit /b 0"
    assert not [line for line in lines if line.strip().lower() in ("exit", "exit 0")]
    assert "SetupComplete2.cmd started" in text
    assert "W. Europe" not in text
    assert "Web-Server" not in text


def test_rule_azure_chains_an_existing_setupcomplete2() -> None:
    spec = load_spec(PLATFORMS / "azure.yaml")
    chain = "C:\\Windows\\OEM\\SetupComplete2.vmprep-chained.cmd"
    text = render(spec, chain_setupcomplete=chain, environ=ENV).files[
        "Windows/OEM/SetupComplete2.cmd"
    ]
    assert f'if not exist "{chain}" goto agent'.encode() in text


def test_rule_azure_refuses_to_chain_setupcomplete2_to_itself() -> None:
    from vmprep.render import RenderError

    spec = load_spec(PLATFORMS / "azure.yaml")
    with pytest.raises(RenderError, match=r"is SetupComplete2\.cmd itself"):
        render(spec, chain_setupcomplete="C:\\Windows\\OEM\\SetupComplete2.cmd", environ=ENV)


def test_rule_aws_executescript_task_runs_the_launcher_once() -> None:
    """ec2launch-v2-settings: executeScript {frequency, type, runAs, content, detach}."""
    task = json.loads(rendered("aws").files["ProgramData/vmprep/ec2launch-task.json"])
    assert task["task"] == "executeScript"
    (item,) = task["inputs"]
    assert item == {
        "frequency": "once",
        "type": "batch",
        "runAs": "localSystem",
        "detach": True,
        "content": 'call "C:\\ProgramData\\vmprep\\firstboot.cmd"',
    }


def test_rule_gce_startup_task_is_boot_system_normal_priority_no_battery_limits() -> None:
    data = rendered("gce").files["ProgramData/vmprep/firstboot-task.xml"]
    assert data.startswith(b"\xff\xfe")  # UTF-16 LE with a BOM, as schtasks /XML reads it
    root = ET.fromstring(data.decode("utf-16").split("\n", 1)[1])
    ns = {"t": TASK_NS}
    assert root.find("t:Triggers/t:BootTrigger", ns) is not None
    assert root.findtext("t:Principals/t:Principal/t:UserId", namespaces=ns) == "S-1-5-18"
    settings = {child.tag.split("}")[1]: child.text for child in root.find("t:Settings", ns)}
    assert settings["DisallowStartIfOnBatteries"] == "false"
    assert settings["StopIfGoingOnBatteries"] == "false"
    assert settings["Priority"] == "5"  # 4-6: normal priority (tasksettings-priority)
    command = root.findtext("t:Actions/t:Exec/t:Command", namespaces=ns)
    assert command == "C:\\ProgramData\\vmprep\\firstboot.cmd"


def test_rule_agent_applies_written_setup_settings_first_with_exact_commands() -> None:
    steps = agent_json(rendered("azure"))["steps"]
    ids = [step["id"] for step in steps]
    assert ids == [
        "platform.timezone",
        "platform.rdp",
        "platform.rdp-nla",
        "platform.firewall-1",
        "iis",
    ]
    assert steps[0]["exec"]["argv"] == [TZUTIL, "/s", "W. Europe Standard Time"]
    assert steps[1]["registry"]["name"] == "fDenyTSConnections"
    assert steps[1]["registry"]["value"] == 0
    assert steps[3]["powershell"] == "Enable-NetFirewallRule -Group '@FirewallAPI.dll,-28752'\n"
    assert steps[0]["retries"] == 0  # defaults filled in like the spec's own steps


def test_rule_gce_locale_step_reboots_only_when_the_system_locale_changes() -> None:
    steps = {s["id"]: s for s in agent_json(rendered("gce"))["steps"]}
    script = steps["platform.locale"]["powershell"]
    assert "$want = 'en-GB'" in script
    assert "Set-WinSystemLocale -SystemLocale $want" in script
    assert "exit 3010" in script
    assert steps["platform.firewall-1"]["powershell"].startswith("Disable-NetFirewallRule")


def test_rule_defaults_are_left_to_the_platform(tmp_path: Path) -> None:
    doc = {"version": 1, "image": {"name": "t", "platform": "azure"}}
    doc["agent"] = base_doc()["agent"]
    steps = agent_json(render(spec_from(tmp_path, doc), environ=ENV))["steps"]
    assert not [s for s in steps if s["id"].startswith("platform.")]


def test_explain_shows_the_platform_flow() -> None:
    from vmprep.render.explain import explain

    aws = load_spec(PLATFORMS / "aws.yaml")
    rows = explain(aws, render(aws, placeholders=True))
    flow = [row for row in rows if row.target == "(first boot)"]
    assert "EC2Launch v2" in flow[1].value
    assert not [row for row in rows if row.target.endswith("unattend.xml")]
    assert any(row.what == "platform.timezone" for row in rows)
    task = next(row for row in rows if row.what == "EC2Launch v2 task")
    assert task.target == "C:\\ProgramData\\vmprep\\ec2launch-task.json"
    gce_spec = load_spec(PLATFORMS / "gce.yaml")
    gce = explain(gce_spec, render(gce_spec, placeholders=True))
    assert any(row.target.endswith("firstboot-task.xml") for row in gce)


def test_rule_gce_launcher_removes_its_boot_task_after_a_successful_launch() -> None:
    """The first-boot task hands over to the agent's own startup task: it deletes itself only
    when the agent launcher exited 0, so a failed launch is tried again at the next boot."""
    lines = rendered("gce").files["ProgramData/vmprep/firstboot.cmd"].decode().split("\r\n")
    delete = next(i for i, line in enumerate(lines) if "schtasks.exe" in line)
    assert lines[delete - 1] == "if errorlevel 1 goto done"
    assert "agent.pyz" in lines[delete - 3]
    assert '/Delete /TN "vmprep-firstboot" /F' in lines[delete]
    for other in ("azure", "aws"):
        launcher = rendered(other).files[HOOKS[other][0]]
        assert b"schtasks" not in launcher
