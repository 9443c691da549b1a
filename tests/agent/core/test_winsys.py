"""System programs by absolute path, never through PATH; the Job Object hooks (#19 items 6, 7)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from vmprep.agent.platform import winplatform as w
from vmprep.agent.platform import winsys
from vmprep.agent.platform.base import Platform, ProcResult
from vmprep.agent.platform.posix import PosixPlatform

S32 = "C:\\Windows\\System32"


@pytest.mark.parametrize(
    ("argv0", "expected"),
    [
        ("powershell.exe", S32 + "\\WindowsPowerShell\\v1.0\\powershell.exe"),
        ("PowerShell.EXE", S32 + "\\WindowsPowerShell\\v1.0\\powershell.exe"),
        ("msiexec.exe", S32 + "\\msiexec.exe"),
        ("msiexec", S32 + "\\msiexec.exe"),
        ("schtasks.exe", S32 + "\\schtasks.exe"),
        ("shutdown.exe", S32 + "\\shutdown.exe"),
        ("sc.exe", S32 + "\\sc.exe"),
        ("taskkill.exe", S32 + "\\taskkill.exe"),
        ("cmd.exe", S32 + "\\cmd.exe"),
        ("tool.exe", "tool.exe"),  # not a system program: left to the user's argv
        ("C:\\tools\\sc.exe", "C:\\tools\\sc.exe"),  # a path the user chose
        ("sub/sc.exe", "sub/sc.exe"),
    ],
)
def test_system_programs_resolve_under_the_windows_directory(argv0: str, expected: str) -> None:
    assert winsys.resolve_argv([argv0, "/x"], system=S32) == [expected, "/x"]


def test_a_32_bit_agent_on_64_bit_windows_uses_sysnative() -> None:
    assert winsys.system_dir("D:\\WINNT", {"PROCESSOR_ARCHITEW6432": "AMD64"}) == (
        "D:\\WINNT\\Sysnative"
    )
    assert winsys.system_dir("D:\\WINNT", {}) == "D:\\WINNT\\System32"


def test_off_windows_the_default_directory_is_used() -> None:
    assert winsys.windows_dir() == "C:\\Windows"


def test_the_windows_platform_runs_every_system_program_by_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[list[str]] = []

    def base_run(self: Platform, argv: list[str] | str, **kw: Any) -> ProcResult:
        # a command line string (msiexec) starts with its program, quoted
        seen.append(argv if isinstance(argv, list) else [argv.split('"')[1]])
        return ProcResult(0, "")

    monkeypatch.setattr(Platform, "run", base_run)
    monkeypatch.delenv("PROCESSOR_ARCHITEW6432", raising=False)
    p = w.WindowsPlatform(tmp_path, {}, "windows-server-2022")
    p.reboot("r")
    p.service({"name": "W3SVC", "state": "running"}, timeout=5)
    p.remove_startup_task()
    p.powershell("exit 0", timeout=5)
    p.msi({"path": "C:\\a.msi"}, {}, "C:\\l.log", timeout=5)
    assert [a[0] for a in seen] == [
        S32 + "\\shutdown.exe",
        S32 + "\\sc.exe",
        S32 + "\\schtasks.exe",
        S32 + "\\WindowsPowerShell\\v1.0\\powershell.exe",
        S32 + "\\msiexec.exe",
    ]


class Tracked(PosixPlatform):
    def __init__(self, tmp: Path) -> None:
        super().__init__(tmp, {})
        self.events: list[str] = []

    def adopt(self, proc: subprocess.Popen[bytes]) -> None:
        self.events.append("adopt")

    def kill_tree(self, proc: subprocess.Popen[bytes]) -> None:
        self.events.append("kill")
        super().kill_tree(proc)

    def release(self, proc: subprocess.Popen[bytes]) -> None:
        self.events.append("release")


def test_every_child_is_adopted_and_released_killed_or_not(tmp_path: Path) -> None:
    p = Tracked(tmp_path)
    assert p.run([sys.executable, "-c", "pass"], timeout=30).exit_code == 0
    assert p.events == ["adopt", "release"]
    p.events.clear()
    result = p.run([sys.executable, "-c", "import time; time.sleep(30)"], timeout=0.5)
    assert result.timed_out
    assert p.events == ["adopt", "kill", "release"]


def test_a_child_that_cannot_be_adopted_is_killed_not_left_suspended(tmp_path: Path) -> None:
    class Refusing(Tracked):
        def adopt(self, proc: subprocess.Popen[bytes]) -> None:
            self.pid = proc.pid
            raise OSError("AssignProcessToJobObject failed")

    p = Refusing(tmp_path)
    with pytest.raises(OSError, match="AssignProcessToJobObject"):
        p.run([sys.executable, "-c", "import time; time.sleep(30)"], timeout=30)
    with pytest.raises(ProcessLookupError):
        os.kill(p.pid, 0)


def test_children_are_created_suspended_for_their_job() -> None:
    flags = w.WindowsPlatform(Path("."), {}).popen_kwargs()["creationflags"]
    assert flags & w.CREATE_SUSPENDED
    assert flags & w.CREATE_NEW_PROCESS_GROUP
