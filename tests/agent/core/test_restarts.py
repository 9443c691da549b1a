"""The reboot plan through `run` in-process: deferred restarts coalesce, wait for the step
that needs them (or the end of the run), satisfy a reboot step, survive a start in the same
boot, and stay bounded by reboot_budget. (On POSIX, 3010 and 3011 arrive as 194 and 195.)"""

from __future__ import annotations

from pathlib import Path

from tests.agent.core.conftest import counter_step, lines
from vmprep.agent import restarts


def deferred(step_id: str, out: Path, **extra: object) -> dict[str, object]:
    return counter_step(step_id, out, code=194, reboot_timing="deferred", **extra)


def test_deferred_restarts_coalesce_before_the_step_that_needs_them(agent, tmp_path: Path) -> None:
    out, after = tmp_path / "out", tmp_path / "after"
    a = agent(
        [
            deferred("a", out),
            counter_step("between", out),
            deferred("b", out),
            counter_step("needs", after, after_reboot=True),
        ]
    )
    assert a.run() == 2
    state = a.state()
    assert state["reboot_pending"]["steps"] == ["baked:a", "baked:b"]
    assert state["restart_due"] is None
    assert (lines(out), lines(after), lines(tmp_path / "reboots")) == (3, 0, 1)
    assert a.step("needs")["status"] == "pending"
    assert a.run() == 0
    assert (lines(out), lines(after), lines(tmp_path / "reboots")) == (3, 1, 1)
    assert [a.step(s)["reboots"] for s in ("a", "b")] == [1, 1]


def test_a_deferred_restart_happens_at_the_end_of_the_run(agent, tmp_path: Path) -> None:
    out = tmp_path / "out"
    a = agent([deferred("a", out), counter_step("z", out)])
    assert a.run() == 2  # every step done, the restart still to come: running
    assert a.state()["state"] == "running"
    assert (lines(out), lines(tmp_path / "reboots")) == (2, 1)
    assert a.run() == 0
    assert (lines(out), lines(tmp_path / "reboots")) == (2, 1)
    assert a.state()["state"] == "done"


def test_a_reboot_step_after_a_pending_restart_is_satisfied_by_it(agent, tmp_path: Path) -> None:
    out = tmp_path / "out"
    a = agent(
        [
            deferred("join", out),
            {"id": "after-join", "reboot": {"reason": "policy"}},
            counter_step("z", out),
        ]
    )
    assert a.run() == 2
    rec = a.step("after-join")
    assert rec["status"] == "done"
    assert "satisfied by the restart due for baked:join" in rec["output_tail"]
    assert a.state()["reboot_pending"]["steps"] == ["baked:join", "baked:after-join"]
    assert a.run() == 0
    assert (lines(out), lines(tmp_path / "reboots")) == (2, 1)


def test_a_reboot_step_with_nothing_pending_reboots_itself(agent, tmp_path: Path) -> None:
    out = tmp_path / "out"
    a = agent([{"id": "rb", "reboot": {}}, counter_step("z", out)])
    assert a.run() == 2
    assert a.run() == 0
    assert (lines(out), lines(tmp_path / "reboots")) == (1, 1)


def test_3010_from_a_script_is_now_by_default_and_3011_always(agent, tmp_path: Path) -> None:
    out = tmp_path / "out"
    a = agent([counter_step("s", out, code=194), counter_step("z", out)])
    assert a.run() == 2
    assert lines(out) == 1  # restarted before z
    assert a.run() == 0
    rerun = tmp_path / "rerun"
    once_more = f'echo x >> "{rerun}"; [ $(wc -l < "{rerun}") -ge 2 ] || exit 195'
    b = agent([{"id": "r", "cmd": once_more, "reboot_timing": "deferred"}, counter_step("z", out)])
    assert b.run() == 2  # 3011 never waits: the step must run again after the restart
    assert b.step("r")["status"] == "pending"


def test_a_start_in_the_same_boot_keeps_the_restart_due(agent, tmp_path: Path) -> None:
    out = tmp_path / "out"
    a = agent([deferred("a", out), counter_step("broken", out, code=1)])
    assert a.run() == 1  # failed: the restart stays due, nobody reboots a failed run
    assert a.state()["restart_due"] == ["baked:a"]
    assert "a restart is still due for baked:a" in a.log()
    a.config["steps"][1] = counter_step("fixed", out)
    assert a.run() == 2  # same boot: the restart still comes
    assert lines(tmp_path / "reboots") == 1
    assert a.run() == 0


def test_a_new_boot_counts_as_the_deferred_restart(agent, tmp_path: Path) -> None:
    out = tmp_path / "out"
    a = agent([deferred("a", out), counter_step("broken", out, code=1)])
    assert a.run() == 1
    a.new_boot()  # e.g. a power cut: the machine restarted all the same
    a.config["steps"][1] = counter_step("fixed", out)
    assert a.run() == 0
    assert lines(tmp_path / "reboots") == 0


def test_reboot_budget_bounds_a_deferred_loop(agent, tmp_path: Path) -> None:
    out = tmp_path / "out"
    a = agent([deferred("loop", out, run="every_boot", reboot_budget=2)])
    assert [a.run() for _ in range(3)] == [2, 2, 1]
    assert "reboot budget (2)" in a.step("loop")["error"]
    assert lines(tmp_path / "reboots") == 2


def test_defaults_per_kind() -> None:
    assert restarts.timing({}, "join_domain", "continue") == restarts.DEFERRED
    assert restarts.timing({}, "rename_computer", "continue") == restarts.DEFERRED
    assert restarts.timing({}, "msi", "continue") == restarts.DEFERRED
    assert restarts.timing({}, "windows_feature", "continue") == restarts.DEFERRED
    assert restarts.timing({}, "powershell", "continue") == restarts.NOW
    assert restarts.timing({}, "reboot", "continue") == restarts.NOW
    assert restarts.timing({"reboot_timing": "now"}, "join_domain", "continue") == restarts.NOW
    assert restarts.timing({"reboot_timing": "deferred"}, "msi", "rerun") == restarts.NOW
