"""A reboot the OS refuses is retried, then recorded as `reboot_failed` (#19 item 5)."""

from __future__ import annotations

from pathlib import Path

from tests.agent.core.conftest import counter_step, lines
from vmprep.agent.status import status


def test_a_refused_reboot_is_retried_then_ends_the_run_failed(agent, tmp_path: Path) -> None:
    out = tmp_path / "out"
    tries = tmp_path / "tries"
    a = agent(
        [counter_step("before", out), {"id": "rb", "reboot": {}}, counter_step("after", out)],
        platform_options={
            "reboot_command": ["/bin/sh", "-c", f'echo x >> "{tries}"; exit 1'],
            "reboot_retry_waits": [0, 0],
        },
    )
    assert a.run() == 1
    assert lines(tries) == 3
    state = a.state()
    assert state["state"] == "failed"
    assert state["error"]["code"] == "reboot_failed"
    assert "failed 3 times (exit 1)" in state["error"]["message"]
    assert state["reboot_pending"]["step"] == "baked:rb"
    code, text = status(a.state_dir, wait=True, timeout=5)
    assert code == 1
    assert "reboot_failed" in text
    assert "waiting for a reboot" not in text
    # The machine is rebooted by hand: the run goes on after the reboot step.
    a.config["platform_options"]["reboot_command"] = ["/bin/true"]
    a.new_boot()
    assert a.run() == 0
    assert lines(out) == 2


def test_a_reboot_that_succeeds_on_a_retry_is_a_normal_reboot(agent, tmp_path: Path) -> None:
    tries = tmp_path / "tries"
    once_fails = f'echo x >> "{tries}"; [ $(wc -l < "{tries}") -ge 2 ]'
    a = agent(
        [{"id": "rb", "reboot": {}}],
        platform_options={
            "reboot_command": ["/bin/sh", "-c", once_fails],
            "reboot_retry_waits": [0, 0],
        },
    )
    assert a.run() == 2
    assert lines(tries) == 2
    assert a.state()["state"] == "running"
    assert a.state()["error"] is None
