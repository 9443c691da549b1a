"""`launch` (what SetupComplete.cmd runs): the startup task registered and started, the exact
argv on Windows; the fallback runs here with reboots deferred, never rebooting inside Setup."""

from __future__ import annotations

import json
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from tests.agent.core.conftest import UUID, counter_step, lines, make_agent
from tests.agent.core.test_winplatform import Recorder
from vmprep.agent.launch import launch_agent
from vmprep.agent.platform import winplatform as w
from vmprep.agent.platform.base import ProcResult
from vmprep.agent.platform.posix import PosixPlatform
from vmprep.agent.run import run_agent

PY = "C:\\Program Files\\Python312\\python.exe"
PYZ = "C:\\ProgramData\\vmprep\\agent.pyz"
NS = {"t": "http://schemas.microsoft.com/windows/2004/02/mit/task"}


@pytest.fixture
def windows_agent(monkeypatch: pytest.MonkeyPatch) -> None:
    """This process looks like `"<python>" -I -S "<install_dir>\\agent.pyz" launch ...`."""
    monkeypatch.setattr(sys, "executable", PY)
    monkeypatch.setattr(sys, "argv", [PYZ, "launch"])
    flags = {name: getattr(sys.flags, name) for name in dir(sys.flags) if name[0] != "_"}
    flags.update(isolated=1, no_site=1)  # the rest stays: importing a module reads them
    monkeypatch.setattr(sys, "flags", SimpleNamespace(**flags))


def launch_with(tmp_path: Path, platform: Any) -> tuple[int, list[dict[str, Any]]]:
    make_agent(tmp_path, [{"id": "rb", "reboot": {}}]).write()
    runs: list[dict[str, Any]] = []

    def run(config_path: Path, **kwargs: Any) -> int:
        runs.append({"config": config_path, **kwargs})
        return 2

    code = launch_agent(tmp_path / "agent.json", platform=lambda *a: platform, run=run)
    return code, runs


def test_windows_registers_the_task_starts_it_and_returns(tmp_path: Path, windows_agent) -> None:
    p = Recorder(tmp_path)
    code, runs = launch_with(tmp_path, p)
    assert (code, runs) == (0, [])
    config = tmp_path.resolve() / "agent.json"
    create, run = (argv for argv, _ in p.calls)
    assert create == w.create_task_argv(create[3])  # the XML's content: test_taskxml
    assert run == ["schtasks.exe", "/Run", "/TN", "vmprep-agent"]
    assert create[3] == str(tmp_path.resolve() / "startup-task.xml")  # kept, for debugging
    action = ET.fromstring(p.task_xml.decode("utf-16")).find("t:Actions/t:Exec", NS)
    assert action is not None
    assert action.findtext("t:Command", namespaces=NS) == PY
    arguments = f"-I -S {PYZ} run --config {config}"  # -I -S carried over
    assert action.findtext("t:Arguments", namespaces=NS) == arguments
    log = (tmp_path / "logs" / "agent.log").read_text()
    assert "the agent runs as the startup task" in log


@pytest.mark.parametrize(
    ("codes", "tried", "why"),
    [
        ([0, 1], ["/Create", "/Run"], "starting the agent failed (exit 1)"),
        ([5], ["/Create"], "registering the startup task failed (exit 5)"),
    ],
)
def test_windows_falls_back_to_running_here_with_reboots_deferred(
    tmp_path: Path, windows_agent, codes: list[int], tried: list[str], why: str
) -> None:
    p = Recorder(tmp_path, codes=codes)
    code, runs = launch_with(tmp_path, p)
    assert [argv[1] for argv, _ in p.calls] == tried
    assert code == 2
    assert [(r["config"], r["defer_reboots"], r["time_limit"]) for r in runs] == [
        (tmp_path.resolve() / "agent.json", True, 300.0)  # the default limit: 5 minutes
    ]
    assert why in (tmp_path / "logs" / "agent.log").read_text()
    assert not any(argv[0] == "shutdown.exe" for argv, _ in p.calls)


class CannotStart(PosixPlatform):
    def start_agent(self, config_path: Path) -> ProcResult:
        raise OSError("no process for you")


def test_fallback_records_the_reboot_and_leaves_it_to_the_next_start(tmp_path: Path) -> None:
    out = tmp_path / "out"
    a = make_agent(
        tmp_path,
        [counter_step("before", out), {"id": "rb", "reboot": {}}, counter_step("after", out)],
    )
    a.write()
    code = launch_agent(a.config_path, platform=CannotStart)
    assert code == 2  # still running: a reboot is due, the next start goes on
    assert lines(tmp_path / "reboots") == 0  # never rebooted from inside Setup
    state = json.loads((tmp_path / "state" / f"{UUID}.json").read_text())
    assert state["state"] == "running"
    assert state["reboot_pending"]["step"] == "baked:rb"
    assert state["steps"]["baked:rb"]["status"] == "done"
    assert lines(out) == 1
    log = (tmp_path / "logs" / "agent.log").read_text()
    assert "starting the agent failed: no process for you" in log
    assert "not rebooting inside Windows Setup" in log
    a.new_boot()  # the startup task, at the next boot
    assert run_agent(a.config_path, None, lock_timeout=5) == 0
    state = json.loads((tmp_path / "state" / f"{UUID}.json").read_text())
    assert (state["state"], state["boot"], lines(out), lines(tmp_path / "reboots")) == (
        "done",
        2,
        2,
        0,
    )


def test_an_unreadable_agent_json_starts_nothing(tmp_path: Path, capsys) -> None:
    (tmp_path / "agent.json").write_text("{")
    p = Recorder(tmp_path)
    assert launch_agent(tmp_path / "agent.json", platform=lambda *a: p) == 4
    assert p.calls == []
    assert "agent.json" in capsys.readouterr().err


def test_the_fallback_starts_no_step_after_its_time_limit(tmp_path: Path) -> None:
    out = tmp_path / "out"
    options = {"launch_time_limit": "0s", "launch_kill_grace": "60s"}
    a = make_agent(
        tmp_path, [counter_step("a", out), counter_step("b", out)], platform_options=options
    )
    a.write()
    assert launch_agent(a.config_path, platform=CannotStart) == 2  # running: resumable
    state = json.loads((tmp_path / "state" / f"{UUID}.json").read_text())
    assert (state["state"], state["steps"]["baked:a"]["status"], lines(out)) == (
        "running",
        "pending",
        0,
    )
    assert "the time limit is reached" in (tmp_path / "logs" / "agent.log").read_text()
    assert run_agent(a.config_path, None, lock_timeout=5) == 0  # the task, at the next boot
    assert lines(out) == 2


@pytest.mark.slow
def test_a_step_still_running_after_the_limit_is_killed_and_resumed_next_boot(
    tmp_path: Path,
) -> None:
    out, marker = tmp_path / "out", tmp_path / "slow-done"
    slow = f'[ -e "{marker}" ] && exit 0; touch "{marker}"; sleep 10'
    steps = [
        {"id": "slow", "exec": {"argv": ["/bin/sh", "-c", slow]}, "on_interrupt": "rerun"},
        counter_step("after", out),
    ]
    options = {"launch_time_limit": "5s", "launch_kill_grace": "500ms"}
    a = make_agent(tmp_path, steps, platform_options=options)
    a.write()
    assert launch_agent(a.config_path, platform=CannotStart) == 2
    state = json.loads((tmp_path / "state" / f"{UUID}.json").read_text())
    assert (state["state"], state["steps"]["baked:slow"]["status"]) == ("running", "running")
    assert lines(out) == 0
    assert "stopping it (its state stays resumable" in (tmp_path / "logs" / "agent.log").read_text()
    a.new_boot()
    assert run_agent(a.config_path, None, lock_timeout=5) == 0  # interrupted: rerun, then on
    assert lines(out) == 1
