"""The agent waits for Windows Setup (and the cloud's agent) before a step that may reboot (#9).

The registry reads and commands are asserted exactly; the POSIX side (`ready_command`) runs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.agent.core.conftest import make_agent
from tests.agent.core.test_winplatform import FakeWinreg, Recorder
from vmprep.agent.logs import Log
from vmprep.agent.platform import winready
from vmprep.agent.platform.base import Platform, ProcResult
from vmprep.agent.platform.posix import PosixPlatform
from vmprep.agent.readiness import NotReady, wait_for_cloud, wait_for_setup

STATE = "SOFTWARE\\Microsoft\\Windows\\CurrentVersion\\Setup\\State"
SYSPREP = "SYSTEM\\Setup\\Status\\SysprepStatus"
READ = 0x20019 | 0x100  # KEY_READ | KEY_WOW64_64KEY


class SetupRegistry(FakeWinreg):
    KEY_READ = 0x20019

    def __init__(self, values: dict[tuple[str, str], Any]) -> None:
        super().__init__()
        self.values = values
        self.key = ""

    def OpenKeyEx(self, hive, sub, reserved, access):
        self.key = sub
        return super().OpenKeyEx(hive, sub, reserved, access)

    def QueryValueEx(self, key, name):
        self.calls.append(("QueryValueEx", name))
        if (self.key, name) not in self.values:
            raise FileNotFoundError(name)
        return self.values[(self.key, name)], 1


@pytest.mark.parametrize(
    ("image_state", "generalization", "pending"),
    [
        ("IMAGE_STATE_COMPLETE", 7, None),
        ("IMAGE_STATE_UNDEPLOYABLE", 7, "ImageState is IMAGE_STATE_UNDEPLOYABLE"),
        ("IMAGE_STATE_COMPLETE", 4, "GeneralizationState is 4, not 7"),
        (None, None, None),  # not there: nothing to wait for (as cloudbase-init)
    ],
)
def test_windows_setup_is_read_from_imagestate_and_generalizationstate(
    tmp_path: Path, image_state: str | None, generalization: int | None, pending: str | None
) -> None:
    values: dict[tuple[str, str], Any] = {}
    if image_state is not None:
        values[(STATE, "ImageState")] = image_state
    if generalization is not None:
        values[(SYSPREP, "GeneralizationState")] = generalization
    reg = SetupRegistry(values)
    why = Recorder(tmp_path, winreg=reg).setup_pending()
    assert (why is None) == (pending is None)
    assert pending is None or pending in str(why)
    reads = [("OpenKeyEx", "HKLM", STATE, READ), ("QueryValueEx", "ImageState")]
    if image_state in (None, "IMAGE_STATE_COMPLETE"):
        reads += [("OpenKeyEx", "HKLM", SYSPREP, READ), ("QueryValueEx", "GeneralizationState")]
    assert reg.calls == reads


def test_azure_waits_for_the_guest_agent_service(tmp_path: Path) -> None:
    stopped = Recorder(tmp_path, codes=[1])
    stopped.cloud = "azure"
    assert "WindowsAzureGuestAgent" in str(stopped.cloud_pending())
    assert stopped.calls[0][0] == ["sc.exe", "query", "WindowsAzureGuestAgent"]
    for cloud in ("generic", "hyperv", "vmware", "gce"):
        quiet = Recorder(tmp_path)
        quiet.cloud = cloud
        assert quiet.cloud_pending() is None
        assert quiet.calls == []


@pytest.mark.parametrize(("code", "pending"), [(0, False), (1, False), (2, True), (4, True)])
def test_aws_asks_ec2launch_status(code: int, pending: bool, monkeypatch) -> None:
    monkeypatch.setenv("PROGRAMFILES", "C:\\Program Files")
    calls: list[list[str]] = []

    def run(argv: list[str]) -> ProcResult:
        calls.append(argv)
        return ProcResult(code, "")

    why = winready.cloud_pending("aws", run, lambda name: True, exists=lambda p: True)
    assert calls == [["C:\\Program Files\\Amazon\\EC2Launch\\EC2Launch.exe", "status"]]
    assert (why is not None) == pending
    assert winready.cloud_pending("aws", run, lambda n: True, exists=lambda p: False) is None


class Scripted(Platform):
    """Setup and cloud answers in turn; a fake clock that advances one second per poll."""

    setup_name = "Windows Setup"

    def __init__(self, setup: list[str | None], cloud: list[str | None]) -> None:
        super().__init__(Path("."), {}, "", "azure")
        self.setup, self.cloud_answers = setup, cloud

    def setup_pending(self) -> str | None:
        return self.setup.pop(0) if self.setup else None

    def cloud_pending(self) -> str | None:
        return self.cloud_answers.pop(0) if self.cloud_answers else None


def timing() -> dict[str, Any]:
    now = [0.0]

    def sleep(seconds: float) -> None:
        now[0] += seconds

    return {"clock": lambda: now[0], "sleep": sleep, "poll": 1.0}


def test_waits_until_setup_is_done_and_for_the_cloud_agent(tmp_path: Path) -> None:
    log = Log(tmp_path, echo=None)
    platform = Scripted(["UNDEPLOYABLE", "UNDEPLOYABLE", None], ["not running", None])
    wait_for_setup(platform, log, 60, **timing())
    wait_for_cloud(platform, log, 60, **timing())
    text = (tmp_path / "agent.log").read_text()
    assert "waiting for Windows Setup: UNDEPLOYABLE" in text
    assert "Windows Setup finished after 2s" in text
    assert "the azure agent before a step that may reboot finished after 1s" in text


def test_setup_not_done_in_time_stops_but_a_late_cloud_agent_does_not(tmp_path: Path) -> None:
    log = Log(tmp_path, echo=None)
    with pytest.raises(NotReady, match="Windows Setup has not finished after 5s"):
        wait_for_setup(Scripted(["UNDEPLOYABLE"] * 100, []), log, 5, **timing())
    wait_for_cloud(Scripted([], ["not running"] * 100), log, 5, **timing())
    assert (
        "the azure agent is not done after 5s (not running); going on"
        in (tmp_path / "agent.log").read_text()
    )


def test_a_run_does_nothing_before_setup_has_finished(tmp_path: Path) -> None:
    flag = tmp_path / "setup-done"
    answer = tmp_path / "unattend.xml"
    answer.write_text("<password/>")
    steps = [{"id": "f", "file": {"path": str(tmp_path / "f.txt"), "content": "x"}}]
    options = {"ready_command": ["/bin/test", "-e", str(flag)], "setup_wait": "0s"}
    agent = make_agent(tmp_path, steps, platform_options=options, answer_files=[str(answer)])
    assert agent.run() == 1
    state = agent.state()
    assert state["error"]["code"] == "setup_not_complete"
    assert "baked:f" not in state["steps"]  # nothing ran: the next start does it
    assert answer.exists()  # Setup may still read it
    flag.write_text("")
    assert agent.run() == 0
    assert agent.step("f")["status"] == "done"
    assert not answer.exists()


def test_the_cloud_agent_is_waited_for_before_the_first_step_that_may_reboot(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "order"

    class Cloud(PosixPlatform):
        def cloud_pending(self) -> str | None:
            with out.open("a") as f:
                f.write("cloud asked\n")
            return None

    step = f'echo "{{}} ran" >> "{out}"'
    steps = [
        {"id": "f", "file": {"path": str(tmp_path / "f.txt"), "content": "x"}},
        {"id": "x", "exec": {"argv": ["/bin/sh", "-c", step.format("x")]}},
        {"id": "y", "exec": {"argv": ["/bin/sh", "-c", step.format("y")]}},
    ]
    from vmprep.agent import run as run_module

    monkeypatch.setattr(run_module, "current_platform", lambda *a: Cloud(*a))
    assert make_agent(tmp_path, steps).run() == 0
    assert out.read_text().splitlines() == ["cloud asked", "x ran", "y ran"]  # once, before x


@pytest.mark.parametrize(
    ("image_state", "kept"), [("IMAGE_STATE_UNDEPLOYABLE", True), (None, False)]
)
def test_launch_leaves_the_answer_files_to_run_while_windows_setup_runs(
    tmp_path: Path, image_state: str | None, kept: bool
) -> None:
    from vmprep.agent.launch import launch_agent

    answer = tmp_path / "unattend.xml"
    answer.write_text("<password/>")
    agent = make_agent(tmp_path, [], answer_files=[str(answer)])
    agent.write()
    values = {} if image_state is None else {(STATE, "ImageState"): image_state}
    p = Recorder(tmp_path, winreg=SetupRegistry(values))
    assert launch_agent(agent.config_path, platform=lambda *a: p) == 0
    assert answer.exists() == kept
    assert [argv[:2] for argv, _ in p.calls] == [
        ["schtasks.exe", "/Create"],
        ["schtasks.exe", "/Run"],
    ]
