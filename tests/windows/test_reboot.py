"""The reboot contract under Windows semantics: `shutdown.exe` (a recording stub) is asked for
the restart, and the bench "reboots" by ending every process of the prefix and starting the
startup task's command line again, as Task Scheduler does at boot (issue #10, group 6)."""

from __future__ import annotations

import json
import random
import shutil
import threading
import time
from collections import Counter
from typing import Any

import pytest

from tests.windows.bench import Prefix, spec, split_windows

SPEC = spec(
    "bench-reboot",
    r"""
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
""",
)


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


@pytest.mark.slow
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


@pytest.mark.slow
def test_the_reboot_budget_ends_a_step_that_asks_for_restarts_for_ever(prefix: Prefix) -> None:
    text = SPEC.replace("    - id: again\n      powershell: 'exit 0'\n", "")
    text = text.replace(
        "windows_feature: {names: [Web-Server]}",
        "windows_feature: {names: [Web-Server]}\n      reboot_budget: 2",
    )
    prefix.render(text)
    prefix.stub("powershell.exe", [3011])  # "restart, then run me again", every time
    prefix.host("C:\\R").mkdir()
    prefix.setupcomplete().check(0)
    codes = [boot(prefix) for _ in range(4)]
    assert codes == [2, 2, 1, 1], codes
    assert len(prefix.records("shutdown.exe")) == 2
    state = status(prefix)
    assert state["state"] == "failed"
    assert prefix.read_text("C:\\R\\log.txt").split() == ["one"]


KILL_POINTS = 6
KILL_SPEC = spec(
    "bench-kill",
    "".join(
        f"    - id: s{i}\n      exec: {{argv: ['C:\\windows\\system32\\net.exe', s{i}]}}\n"
        for i in range(8)
    ),
)


@pytest.mark.slow
def test_kill_points_never_run_a_run_once_step_twice(prefix: Prefix) -> None:
    """The power goes at a random moment of the run (every Windows process of the prefix ends
    at once), then the machine boots and the task runs again: no step starts twice (exec is
    run-once: an interrupted one fails the run rather than run again), and a run that ends
    `done` ran every step exactly once. Bounded: a handful of kill points fits CI."""
    rng = random.Random(10)
    prefix.render(KILL_SPEC)
    prefix.stub("net.exe", [0], sleep_ms=250)
    prefix.setupcomplete().check(0)
    prefix.kill()
    task = prefix.task_command()
    outcomes = []
    for _ in range(KILL_POINTS):
        _reset(prefix)
        delay = rng.uniform(1.0, 5.0)  # start-up to the last step: about 1.5 to 4.5 s here
        worker = threading.Thread(target=prefix.run_task, kwargs={"command": task})
        worker.start()
        time.sleep(delay)
        prefix.kill()
        worker.join(60)
        before = Counter(split_windows(r["cmdline"])[1] for r in prefix.records("net.exe"))
        prefix.run_task(command=task, timeout=180)
        prefix.kill()
        ran = Counter(split_windows(r["cmdline"])[1] for r in prefix.records("net.exe"))
        assert max(ran.values(), default=0) <= 1, (delay, ran)
        state = status(prefix)
        outcomes.append(state["state"])
        if state["state"] == "done":
            assert sorted(ran) == [f"s{i}" for i in range(8)], (delay, ran)
        else:
            assert state["state"] == "failed", state
            assert state["error"]["code"] == "interrupted", state
            stopped = [s["id"] for s in state["steps"] if s["status"] not in ("done", "pending")]
            assert len(stopped) == 1, state
            # The step the power cut interrupted is not run again on the next boot. The cut may
            # land after the agent marked it running but before net.exe started (0 records).
            assert ran[stopped[0]] == before[stopped[0]], (delay, before, ran)


def _reset(prefix: Prefix) -> None:
    """A freshly imaged disk for the next kill point: no agent state, no records."""
    install = prefix.find("C:\\ProgramData\\vmprep")
    for name in ("state", "logs", "spool"):
        shutil.rmtree(install / name, ignore_errors=True)
    bench_dir = prefix.find("C:\\vmprep-bench")
    for path in bench_dir.iterdir():
        if path.name == "records.jsonl" or path.name.startswith("count."):
            path.unlink()
