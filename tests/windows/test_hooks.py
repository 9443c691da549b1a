"""Each example's first-boot hook under Wine's cmd.exe (issue #10, group 1): SetupComplete.cmd
(generic images), C:\\Windows\\OEM\\SetupComplete2.cmd (Azure) or the install directory's
firstboot.cmd (EC2Launch v2's task, GCE's startup task) runs `agent.pyz launch` with the
Windows CPython at agent.runtime.python, which registers and starts the startup task; and a
hook whose interpreter is missing logs that and still exits 0."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import EXAMPLES
from tests.windows.bench import Prefix, split_windows

HOOKS = (
    "Windows\\Setup\\Scripts\\SetupComplete.cmd",
    "Windows\\OEM\\SetupComplete2.cmd",
    "ProgramData\\vmprep\\firstboot.cmd",
)
SPECS = sorted(EXAMPLES.glob("*.yaml")) + sorted((EXAMPLES / "platforms").glob("*.yaml"))


def hook_of(prefix: Prefix) -> str:
    r = prefix.rendered
    assert r is not None
    found = [h for h in HOOKS if (r.out / Path(*h.split("\\"))).is_file()]
    # a firstboot.cmd goes with the platforms that have no SetupComplete.cmd of ours
    return "C:\\" + (found[0] if found[0].endswith("SetupComplete.cmd") else found[-1])


@pytest.mark.parametrize("spec", SPECS, ids=lambda p: p.stem)
@pytest.mark.slow
def test_the_hook_starts_the_agent_through_its_task(prefix: Prefix, spec: Path) -> None:
    r = prefix.render(spec)
    hook = hook_of(prefix)
    prefix.cmd(hook).check(0)
    creates = [c for c in prefix.records("schtasks.exe") if "/Create" in c["cmdline"]]
    runs = [c["cmdline"] for c in prefix.records("schtasks.exe") if "/Run" in c["cmdline"]]
    assert len(creates) == 1, prefix.records()
    # by absolute path from the Windows directory, never through PATH (#19)
    assert [c.lower() for c in runs] == [
        "c:\\windows\\system32\\schtasks.exe /run /tn vmprep-agent"
    ]
    task = split_windows(prefix.task_command())
    assert task == [r.python, "-I", "-S", r.pyz, "run", "--config", r.config]
    logs = "\n".join(
        p.read_text(errors="replace")
        for p in prefix.find(r.install_dir).glob("*.log")
        if p.name != "agent.log"
    )
    assert "the agent launcher exited with 0" in logs, logs


@pytest.mark.slow
def test_a_missing_interpreter_is_logged_and_the_hook_still_exits_0(prefix: Prefix) -> None:
    r = prefix.render(EXAMPLES / "minimal.yaml", python=False)
    prefix.setupcomplete().check(0)
    log = prefix.read_text(r.install_dir + "\\setupcomplete.log")
    assert f'error: the interpreter "{r.python}" is missing' in log
    assert prefix.records() == []
