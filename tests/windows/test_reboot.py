"""The reboot contract under Windows semantics: `shutdown.exe` (a recording stub) is asked for
the restart, and the bench "reboots" by ending every process of the prefix and starting the
startup task's command line again, as Task Scheduler does at boot (issue #10, group 6)."""

from __future__ import annotations

import json
from typing import Any

from tests.windows.bench import Prefix

SPEC = r"""
version: 1
image: {name: bench-reboot, os: windows-server-2022}
setup:
  timezone: UTC
  administrator: {password: {env: VMPREP_ADMIN_PASSWORD}}
agent:
  runtime: {python: 'C:\Program Files\Python313\python.exe'}
  steps:
    - id: one
      cmd: 'echo one>> C:\R\log.txt'
    - id: feature
      windows_feature: {names: [Web-Server]}
    - id: two
      cmd: 'echo two>> C:\R\log.txt'
    - id: again
      powershell: 'exit 0'
    - id: three
      cmd: 'echo three>> C:\R\log.txt'
"""


def status(prefix: Prefix) -> dict[str, Any]:
    r = prefix.rendered
    assert r is not None
    out = prefix.agent("status", "--config", r.config, "--format", "json")
    return json.loads(out.stdout)


def boot(prefix: Prefix) -> int | None:
    """One boot: the startup task runs `run` to its end; then the power goes (every process
    of the prefix ends, as at a restart)."""
    result = prefix.run_task(timeout=180)
    prefix.kill()
    return result.returncode


def test_3010_and_3011_restart_and_resume_with_run_once_steps_run_once(prefix: Prefix) -> None:
    prefix.render(SPEC)
    prefix.stub("powershell.exe", [3010, 3011, 0])  # feature: 3010; again: 3011, then 0
    prefix.host("C:\\R").mkdir()
    prefix.setupcomplete().check(0)
    # boot 1: feature's 3010 restart is deferred and joins again's 3011 (one restart);
    # boot 2: again runs again and the run ends; boot 3: nothing is left to do
    codes = [boot(prefix) for _ in range(3)]
    assert codes == [2, 0, 0], codes
    assert prefix.read_text("C:\\R\\log.txt").split() == ["one", "two", "three"]
    shutdowns = [r["cmdline"] for r in prefix.records("shutdown.exe")]
    assert len(shutdowns) == 1
    assert all(" /r /t " in c for c in shutdowns)
    state = status(prefix)
    assert state["state"] == "done"
    steps = {s["id"]: s for s in state["steps"]}
    assert steps["feature"]["attempts"] == 1
    assert len(prefix.records("powershell.exe")) == 3  # feature once, again twice (3011)


def test_the_reboot_budget_ends_a_step_that_asks_for_restarts_for_ever(prefix: Prefix) -> None:
    spec = SPEC.replace("    - id: again\n      powershell: 'exit 0'\n", "")
    spec = spec.replace(
        "windows_feature: {names: [Web-Server]}",
        "windows_feature: {names: [Web-Server]}\n      reboot_budget: 2",
    )
    prefix.render(spec)
    prefix.stub("powershell.exe", [3011])  # "restart, then run me again", every time
    prefix.host("C:\\R").mkdir()
    prefix.setupcomplete().check(0)
    codes = [boot(prefix) for _ in range(4)]
    assert codes == [2, 2, 1, 1], codes
    assert len(prefix.records("shutdown.exe")) == 2
    state = status(prefix)
    assert state["state"] == "failed"
    assert prefix.read_text("C:\\R\\log.txt").split() == ["one"]
