"""The rendered image's first boot under Wine: SetupComplete.cmd (Wine's cmd.exe) runs
`agent.pyz launch` with the Windows CPython, which registers and starts the startup task
(recorded by the schtasks stub); the bench then starts the task the way Task Scheduler
would, and the agent runs to `done`."""

from __future__ import annotations

import json

import pytest

from tests.conftest import EXAMPLES
from tests.windows.bench import Prefix


@pytest.mark.slow
def test_minimal_first_boot_runs_to_done(prefix: Prefix) -> None:
    r = prefix.render(EXAMPLES / "minimal.yaml")
    prefix.setupcomplete().check(0)
    log = prefix.read_text(r.install_dir + "\\setupcomplete.log")
    assert "the agent launcher exited with 0" in log, log

    calls = [rec["cmdline"] for rec in prefix.records("schtasks.exe")]
    assert len(calls) == 2, calls
    # by absolute path from the Windows directory the OS reports, never through PATH (#19)
    schtasks = "C:\\windows\\System32\\schtasks.exe"
    assert calls[0] == (
        f"{schtasks} /Create /XML {r.install_dir}\\startup-task.xml /TN vmprep-agent /F"
    )
    assert calls[1] == f"{schtasks} /Run /TN vmprep-agent"
    assert prefix.task_command() == f'"{r.python}" -I -S {r.pyz} run --config {r.config}'  # XML

    prefix.run_task().check(0)
    status = prefix.agent("status", "--config", r.config, "--format", "json").check(0)
    assert json.loads(status.stdout)["state"] == "done", status.stdout
