"""`python -I -S agent.pyz launch` as a real process: it starts `run` in a detached child (the
POSIX startup task) and returns at once; the child finishes the job on its own."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

from tests.agent.core.conftest import UUID, make_agent


def test_launch_returns_at_once_and_a_detached_run_does_the_job(
    tmp_path: Path, agent_pyz: Path
) -> None:
    go, out, marks = tmp_path / "go", tmp_path / "out", tmp_path / "task"
    wait = f'i=0; while [ ! -e "{go}" ] && [ $i -lt 1200 ]; do sleep 0.05; i=$((i+1)); done'
    a = make_agent(
        tmp_path,
        [{"id": "gate", "exec": {"argv": ["/bin/sh", "-c", f'{wait}; echo gate >> "{out}"']}}],
        platform_options={
            "startup_install_command": ["/bin/sh", "-c", f'echo "$@" >> "{marks}"', "sh"],
        },
    )
    a.write()
    argv = [sys.executable, "-I", "-S", str(agent_pyz)]
    launcher = subprocess.Popen(
        [*argv, "launch", "--config", str(a.config_path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    _, err = launcher.communicate(timeout=30)  # EOF too: the child holds none of its pipes
    assert launcher.returncode == 0, err
    assert not out.exists()  # launch did not wait for the step (it waits for `go`)
    registered = marks.read_text().split()
    assert registered == [*argv, "run", "--config", str(a.config_path.resolve())]
    go.touch()
    status = subprocess.run(
        [*argv, "status", "--config", str(a.config_path), "--wait", "--timeout", "30s"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert status.returncode == 0, status.stdout + status.stderr
    deadline = time.monotonic() + 30
    while "run ended" not in (tmp_path / "logs" / "agent.log").read_text():
        assert time.monotonic() < deadline
        time.sleep(0.05)
    state = json.loads((tmp_path / "state" / f"{UUID}.json").read_text())
    assert (state["state"], out.read_text()) == ("done", "gate\n")
    assert state["agent_pid"] != launcher.pid  # the job ran in another process
    log = (tmp_path / "logs" / "agent.log").read_text()
    assert log.index("the agent runs as the startup task") < log.index("step gate")
