"""`vmprep sysprep` per `image.platform`, through `--root DIR`, the fake platform and the
recording fake sysprep. Each test names the platform rule it checks (vmprep/spec/platforms.py,
vmprep/sysprep/flows.py, docs/platforms/<name>.md).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import EXAMPLES
from tests.sysprep.conftest import clean_facts, clean_platform_data, install_fake_sysprep
from vmprep.spec.platforms import GCE_TASK_NAME
from vmprep.sysprep.flows import AGENT_CONFIG, EC2LAUNCH_EXE, POWERSHELL_EXE, merge_agent_config
from vmprep.sysprep.platform import FAKE_PLATFORM_FILE

AGENT_CONFIG_JSON = {
    "version": "1.0",
    "config": [
        {"stage": "boot", "tasks": [{"task": "extendRootPartition"}]},
        {"stage": "postReady", "tasks": [{"task": "startSsm"}]},
    ],
}


def spec_for(tmp_path: Path, name: str) -> Path:
    spec = tmp_path / f"{name}.yaml"
    shutil.copy(EXAMPLES / "platforms" / f"{name}.yaml", spec)
    return spec


def set_platform(
    drive: Path, *, facts: dict[str, Any] | None = None, commands=(), registry=None
) -> None:
    data = clean_platform_data(facts)
    data["commands"] = [*commands, *data["commands"]]
    data["registry"] = registry or {}
    (drive / FAKE_PLATFORM_FILE).write_text(json.dumps(data))


def move_fake_sysprep(drive: Path, rel: str) -> None:
    """The fake records argv and flips ImageState, wherever the platform's tool lives."""
    exe = install_fake_sysprep(drive)
    target = drive / rel
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(exe, target)
    # the fake finds the drive three levels up from itself, as sysprep.exe does
    body = target.read_text().replace("parents[3]", f"parents[{len(Path(rel).parts) - 1}]")
    target.write_text(body)
    exe.unlink()


def azure_facts() -> dict[str, Any]:
    facts = clean_facts()
    facts["services"] = [
        {"name": "RdAgent", "status": "Running"},
        {"name": "WindowsAzureGuestAgent", "status": "Running"},
    ]
    return facts


def gce_facts() -> dict[str, Any]:
    facts = clean_facts()
    facts["services"] = [{"name": "GCEAgent", "status": "Running"}]
    return facts


def aws_commands(status: int = 0) -> list[dict[str, Any]]:
    return [
        {"match": "get-agent-config", "stdout": json.dumps(AGENT_CONFIG_JSON)},
        {"match": "EC2Launch.exe version", "stdout": "2.0.1981\n"},
        {"match": "EC2Launch.exe status", "returncode": status},
        {"match": "EC2Launch.exe validate", "stdout": ""},
    ]


@pytest.fixture
def sysprep(run_vmprep, drive):
    def invoke(spec: Path, *args: str, expect: int = 0):
        return run_vmprep("sysprep", *args, "--root", str(drive), str(spec), expect=expect)

    return invoke


def argv_seen(drive: Path) -> list[str]:
    argv: list[str] = json.loads((drive / "fake-sysprep-argv.json").read_text())
    return argv


# --- azure -------------------------------------------------------------------------------


def test_rule_azure_dry_run_no_answer_file_no_unattend(sysprep, drive, tmp_path):
    set_platform(drive, facts=azure_facts())
    (drive / "Windows/Panther/unattend.xml").write_text("<old/>")
    out = json.loads(
        sysprep(spec_for(tmp_path, "azure"), "--generalize", "--dry-run", "--format", "json").stdout
    )
    assert out["platform"] == "azure"
    assert not [a for a in out["command"] if a.lower().startswith("/unattend")]
    assert out["command"][1:] == ["/generalize", "/oobe", "/quit", "/quiet"]
    paths = [f["path"] for f in out["files"]]
    assert "Windows/OEM/SetupComplete2.cmd" in paths
    assert not [p for p in paths if p.casefold().endswith("unattend.xml")]
    assert out["remove"] == ["Windows/Panther/unattend.xml"]
    checks = {c["id"]: c["status"] for c in out["checks"]}
    assert checks["answer-files"] == "warn"  # removed, not a refusal
    assert {"azure-agents", "azure-cdrom", "azure-dhcp"} <= set(checks)
    assert (drive / "Windows/Panther/unattend.xml").read_text() == "<old/>"  # dry run


def test_rule_azure_generalize_removes_answer_files_and_installs_setupcomplete2(
    sysprep, drive, tmp_path
):
    set_platform(drive, facts=azure_facts())
    (drive / "Windows/Panther/unattend.xml").write_text("<old/>")
    (drive / "Windows/OEM").mkdir(parents=True)
    (drive / "Windows/OEM/SetupComplete2.cmd").write_bytes(b"@echo theirs\r\n")
    checks = json.loads(sysprep(spec_for(tmp_path, "azure"), "--check", "--format", "json").stdout)
    chain = next(c for c in checks["checks"] if c["id"] == "setupcomplete")
    assert chain["status"] == "warn"
    assert "SetupComplete2.vmprep-chained.cmd" in chain["reason"]
    sysprep(spec_for(tmp_path, "azure"), "--generalize", "--no-shutdown")
    assert argv_seen(drive) == ["/generalize", "/oobe", "/quit", "/quiet"]
    assert not (drive / "Windows/Panther/unattend.xml").exists()
    ours = (drive / "Windows/OEM/SetupComplete2.cmd").read_bytes()
    assert b"SetupComplete2.vmprep-chained.cmd" in ours  # the existing one is chained
    chained = drive / "Windows/OEM/SetupComplete2.vmprep-chained.cmd"
    assert chained.read_bytes() == b"@echo theirs\r\n"
    assert not (drive / "Windows/System32/Sysprep/unattend.xml").exists()


def test_rule_azure_failed_sysprep_puts_the_answer_file_back(sysprep, drive, tmp_path):
    set_platform(drive, facts=azure_facts())
    (drive / "Windows/Panther/unattend.xml").write_text("<old/>")
    (drive / "fake-sysprep-scenario").write_text("exit")
    sysprep(spec_for(tmp_path, "azure"), "--generalize", "--no-shutdown", expect=4)
    assert (drive / "Windows/Panther/unattend.xml").read_text() == "<old/>"
    assert not (drive / "Windows/OEM/SetupComplete2.cmd").exists()


def test_rule_azure_vm_mode_only_when_asked(sysprep, drive, tmp_path):
    set_platform(drive, facts=azure_facts())
    spec = spec_for(tmp_path, "azure")
    spec.write_text(spec.read_text().replace("  timeout: 30m", "  timeout: 30m\n  vm_mode: true"))
    out = json.loads(sysprep(spec, "--generalize", "--dry-run", "--format", "json").stdout)
    assert out["command"][-1] == "/mode:vm"


@pytest.mark.parametrize(
    ("change", "check"),
    [
        ({"facts": clean_facts()}, "azure-agents"),
        (
            {
                "facts": azure_facts(),
                "registry": {"HKLM\\SYSTEM\\CurrentControlSet\\Services\\cdrom": {"Start": 4}},
            },
            "azure-cdrom",
        ),
        ({"facts": {**azure_facts(), "dhcp": [{"adapter": "eth", "dhcp": False}]}}, "azure-dhcp"),
    ],
)
def test_rule_azure_preflight_refuses(sysprep, drive, tmp_path, change, check):
    set_platform(drive, **change)
    out = json.loads(
        sysprep(spec_for(tmp_path, "azure"), "--check", "--format", "json", expect=3).stdout
    )
    assert {c["id"] for c in out["checks"] if c["status"] == "fail"} == {check}


# --- aws ---------------------------------------------------------------------------------


def test_rule_aws_merges_the_task_and_runs_ec2launch_sysprep(sysprep, drive, tmp_path):
    set_platform(drive, commands=aws_commands())
    move_fake_sysprep(drive, EC2LAUNCH_EXE)
    sysprep(spec_for(tmp_path, "aws"), "--generalize", "--no-shutdown")
    assert argv_seen(drive) == ["sysprep", "--clean"]  # EC2Launch's own Sysprep, no /unattend
    config = json.loads((drive / AGENT_CONFIG).read_text())
    post = next(s for s in config["config"] if s["stage"] == "postReady")
    assert post["tasks"][0]["task"] == "executeScript"
    assert (
        post["tasks"][0]["inputs"][0]["content"] == 'call "C:\\ProgramData\\vmprep\\firstboot.cmd"'
    )
    assert post["tasks"][1] == {"task": "startSsm"}  # EC2Launch's own tasks stay
    assert (drive / "ProgramData/vmprep/firstboot.cmd").is_file()
    assert not (drive / "Windows/System32/Sysprep/unattend.xml").exists()


def test_rule_aws_dry_run_shows_validate_then_ec2launch_sysprep(sysprep, drive, tmp_path):
    set_platform(drive, commands=aws_commands())
    move_fake_sysprep(drive, EC2LAUNCH_EXE)
    out = json.loads(
        sysprep(spec_for(tmp_path, "aws"), "--generalize", "--dry-run", "--format", "json").stdout
    )
    assert out["command"][1:] == ["sysprep", "--clean"]
    assert out["before"][0][1:] == ["validate"]
    assert AGENT_CONFIG in [f["path"] for f in out["files"]]
    assert not (drive / AGENT_CONFIG).exists()


def test_rule_aws_preflight_needs_ec2launch_v2_not_running(sysprep, drive, tmp_path):
    set_platform(drive, commands=aws_commands(status=2))
    out = json.loads(
        sysprep(spec_for(tmp_path, "aws"), "--check", "--format", "json", expect=3).stdout
    )
    fails = {c["id"]: c["reason"] for c in out["checks"] if c["status"] == "fail"}
    assert "not installed" in fails["ec2launch"]
    move_fake_sysprep(drive, EC2LAUNCH_EXE)
    out = json.loads(
        sysprep(spec_for(tmp_path, "aws"), "--check", "--format", "json", expect=3).stdout
    )
    fails = {c["id"]: c["reason"] for c in out["checks"] if c["status"] == "fail"}
    assert "still running" in fails["ec2launch"]


def test_merge_agent_config_adds_to_an_existing_executescript_once():
    ours = {"task": "executeScript", "inputs": [{"content": "call x", "frequency": "once"}]}
    config: dict[str, Any] = {
        "config": [
            {
                "stage": "postReady",
                "tasks": [{"task": "executeScript", "inputs": [{"content": "theirs"}]}],
            }
        ]
    }
    once = merge_agent_config(config, ours)
    twice = merge_agent_config(once, ours)
    assert twice == once
    assert [i["content"] for i in once["config"][0]["tasks"][0]["inputs"]] == ["theirs", "call x"]
    assert config["config"][0]["tasks"][0]["inputs"] == [{"content": "theirs"}]  # not changed


# --- gce ---------------------------------------------------------------------------------


def gce_drive(drive: Path) -> None:
    set_platform(drive, facts=gce_facts(), commands=[{"match": "schtasks.exe", "stdout": ""}])
    (drive / "Program Files/Google/Compute Engine/sysprep").mkdir(parents=True)
    move_fake_sysprep(drive, POWERSHELL_EXE)


def test_rule_gce_registers_the_task_then_runs_gcesysprep(sysprep, drive, tmp_path):
    gce_drive(drive)
    sysprep(spec_for(tmp_path, "gce"), "--generalize", "--no-shutdown")
    assert argv_seen(drive)[-2:] == ["-Command", "GCESysprep -NoShutdown"]
    # schtasks /Create ran and succeeded: the fake answers only commands it knows, and any
    # other exits 127, which stops the run before GCESysprep (test_..._without_schtasks).
    assert (drive / "ProgramData/vmprep/firstboot-task.xml").is_file()
    assert not (drive / "Windows/Setup/Scripts/SetupComplete.cmd").exists()


def test_rule_gce_dry_run_shows_schtasks_create_with_the_task_xml(sysprep, drive, tmp_path):
    gce_drive(drive)
    out = json.loads(
        sysprep(spec_for(tmp_path, "gce"), "--generalize", "--dry-run", "--format", "json").stdout
    )
    (create,) = out["before"]
    assert create[:4] == ["schtasks.exe", "/Create", "/TN", GCE_TASK_NAME]
    assert create[4:] == ["/XML", "C:\\ProgramData\\vmprep\\firstboot-task.xml", "/F"]
    assert not [a for a in out["command"] if a.lower().startswith("/unattend")]


def test_rule_gce_preflight_needs_the_guest_environment(sysprep, drive, tmp_path):
    set_platform(drive, facts=clean_facts())
    out = json.loads(
        sysprep(spec_for(tmp_path, "gce"), "--check", "--format", "json", expect=3).stdout
    )
    fails = {c["id"]: c["reason"] for c in out["checks"] if c["status"] == "fail"}
    assert "GCEAgent is not installed" in fails["gce-agents"]


def test_rule_gce_a_failed_task_registration_stops_before_gcesysprep(sysprep, drive, tmp_path):
    gce_drive(drive)
    set_platform(drive, facts=gce_facts())  # schtasks.exe unknown: exit 127
    sysprep(spec_for(tmp_path, "gce"), "--generalize", "--no-shutdown", expect=4)
    assert not (drive / "fake-sysprep-argv.json").exists()
    assert not (drive / "ProgramData/vmprep/firstboot-task.xml").exists()  # restored


def test_rule_aws_a_config_ec2launch_refuses_is_put_back_before_any_sysprep(
    sysprep, drive, tmp_path
):
    """`ec2launch validate` runs after the merged agent-config.yml is installed and before
    `ec2launch sysprep`; when it refuses, EC2Launch's own file is restored."""
    refuse = {"match": "EC2Launch.exe validate", "returncode": 1, "stderr": "bad task"}
    set_platform(drive, commands=[refuse, *aws_commands()])
    move_fake_sysprep(drive, EC2LAUNCH_EXE)
    config = drive / AGENT_CONFIG
    config.parent.mkdir(parents=True)
    config.write_bytes(b"version: 1.0\nconfig: []\n")
    result = sysprep(spec_for(tmp_path, "aws"), "--generalize", "--no-shutdown", expect=4)
    assert "bad task" in result.stderr
    assert config.read_bytes() == b"version: 1.0\nconfig: []\n"
    assert not (drive / "fake-sysprep-argv.json").exists()
