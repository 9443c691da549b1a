"""The agent waits for Windows Setup (and the cloud's agent) before a step that may reboot (#9).

The registry reads and commands are asserted exactly; the POSIX side (`ready_command`) runs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.agent.core.conftest import make_agent
from tests.agent.core.test_windows import FakeWinreg, Recorder
from vmprep.agent.logs import Log
from vmprep.agent.platform import winready
from vmprep.agent.platform.base import Platform, ProcResult
from vmprep.agent.readiness import NotReady, wait_until_ready

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


def test_waits_until_setup_is_done_then_for_the_cloud_agent(tmp_path: Path) -> None:
    log = Log(tmp_path, echo=None)
    platform = Scripted(["UNDEPLOYABLE", "UNDEPLOYABLE", None], ["not running", None])
    wait_until_ready(platform, log, setup_wait=60, cloud_wait=60, **timing())
    text = (tmp_path / "agent.log").read_text()
    assert "waiting for Windows Setup before a step that may reboot: UNDEPLOYABLE" in text
    assert "Windows Setup finished after 2s" in text
    assert "the azure agent finished after 1s" in text


def test_setup_not_done_in_time_stops_but_a_late_cloud_agent_does_not(tmp_path: Path) -> None:
    log = Log(tmp_path, echo=None)
    with pytest.raises(NotReady, match="Windows Setup has not finished after 5s"):
        wait_until_ready(Scripted(["UNDEPLOYABLE"] * 100, []), log, setup_wait=5, **timing())
    wait_until_ready(Scripted([], ["not running"] * 100), log, cloud_wait=5, **timing())
    assert (
        "the azure agent is not done after 5s (not running); going on"
        in (tmp_path / "agent.log").read_text()
    )


def test_a_run_stops_before_the_first_step_that_may_reboot(tmp_path: Path) -> None:
    flag = tmp_path / "setup-done"
    steps = [
        {"id": "f", "file": {"path": str(tmp_path / "f.txt"), "content": "x"}},  # cannot reboot
        {"id": "x", "exec": {"argv": ["/bin/true"]}},  # may: it could exit 3010
    ]
    options = {"ready_command": ["/bin/test", "-e", str(flag)], "setup_wait": "0s"}
    agent = make_agent(tmp_path, steps, platform_options=options)
    assert agent.run() == 1
    state = agent.state()
    assert state["error"]["code"] == "setup_not_complete"
    assert agent.step("f")["status"] == "done"
    assert (agent.step("x")["status"], agent.step("x")["attempts"]) == ("pending", 0)  # next start
    flag.write_text("")
    assert agent.run() == 0
    assert agent.step("x")["status"] == "done"
