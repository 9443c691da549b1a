"""The engine through `run` in-process: ordering, run policies, when, retries, timeouts,
continue_on_error, interruptions, reboots and their budget, preflight."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from tests.agent.core.conftest import UUID, counter_step, lines
from vmprep.agent.state import AgentLock


def test_steps_run_in_order_once_per_instance(agent, tmp_path: Path) -> None:
    out = tmp_path / "out"
    a = agent(
        [
            {"id": "one", "cmd": f'echo one >> "{out}"'},
            {"id": "two", "exec": {"argv": ["/bin/sh", "-c", f'echo two >> "{out}"']}},
        ]
    )
    assert a.run() == 0
    assert out.read_text() == "one\ntwo\n"
    state = a.state()
    assert state["state"] == "done"
    assert [state["steps"][k]["status"] for k in ("baked:one", "baked:two")] == ["done", "done"]
    a.new_boot()
    assert a.run() == 0  # a plain reboot: nothing runs again
    assert out.read_text() == "one\ntwo\n"


def test_new_instance_id_runs_once_per_instance_steps_again(agent, tmp_path: Path) -> None:
    out = tmp_path / "out"
    a = agent([counter_step("c", out)])
    assert a.run() == 0
    a.set_uuid("11111111-2222-3333-4444-555555555555")
    assert a.run() == 0
    assert lines(out) == 2
    assert a.state("11111111-2222-3333-4444-555555555555")["state"] == "done"


def test_every_boot_runs_once_per_boot(agent, tmp_path: Path) -> None:
    out = tmp_path / "out"
    a = agent([counter_step("c", out, run="every_boot")])
    assert a.run() == 0
    assert a.run() == 0  # same boot
    assert lines(out) == 1
    a.new_boot()
    assert a.run() == 0
    assert lines(out) == 2


def test_when_conditions(agent, tmp_path: Path) -> None:
    out = tmp_path / "out"
    a = agent(
        [
            counter_step("os-yes", out, when={"os": ["windows-10", "windows-server-2022"]}),
            counter_step("os-no", out, when={"os": "windows-11"}),
            counter_step("var-yes", out, when={"variables": {"tier": "web", "n": 2}}),
            counter_step("var-bool", out, when={"variables": {"n": True}}),
            counter_step("role-no", out, when={"role": "web"}),
        ],
        variables={"tier": "web", "n": 2},
    )
    assert a.run() == 0
    assert lines(out) == 2
    statuses = {k: v["status"] for k, v in a.state()["steps"].items()}
    assert statuses == {
        "baked:os-yes": "done",
        "baked:os-no": "skipped",
        "baked:var-yes": "done",
        "baked:var-bool": "skipped",
        "baked:role-no": "skipped",
    }


def test_retries_with_delay_then_success(agent, tmp_path: Path) -> None:
    out = tmp_path / "out"
    script = f'echo x >> "{out}"; [ $(wc -l < "{out}") -ge 3 ]'
    a = agent([{"id": "flaky", "cmd": script, "retries": 3, "retry_delay": "50ms"}])
    started = time.monotonic()
    assert a.run() == 0
    assert time.monotonic() - started >= 0.1
    rec = a.step("flaky")
    assert (rec["status"], rec["attempts"], lines(out)) == ("done", 3, 3)


def test_failure_stops_the_run_and_is_retried_next_run(agent, tmp_path: Path) -> None:
    out = tmp_path / "out"
    a = agent(
        [counter_step("bad", out, code=7, retries=1, retry_delay=0), counter_step("after", out)]
    )
    assert a.run() == 1
    state = a.state()
    assert state["state"] == "failed"
    assert state["error"]["code"] == "step_failed"
    assert "exit code 7" in state["error"]["message"]
    assert state["steps"]["baked:bad"]["attempts"] == 2
    assert "baked:after" not in state["steps"]
    assert a.run() == 1
    assert lines(out) == 4


def test_continue_on_error(agent, tmp_path: Path) -> None:
    out = tmp_path / "out"
    a = agent(
        [counter_step("bad", out, code=1, continue_on_error=True), counter_step("after", out)]
    )
    assert a.run() == 0
    assert a.step("bad")["status"] == "failed"
    assert a.step("after")["status"] == "done"


def test_timeout_kills_the_whole_process_tree(agent, tmp_path: Path) -> None:
    pid_file = tmp_path / "child.pid"
    script = f'sleep 30 & echo $! > "{pid_file}"; wait'
    a = agent([{"id": "slow", "cmd": script, "timeout": "300ms"}])
    started = time.monotonic()
    assert a.run() == 1
    assert time.monotonic() - started < 10
    rec = a.step("slow")
    assert rec["status"] == "failed"
    assert "timed out" in rec["error"]
    child = int(pid_file.read_text())
    for _ in range(100):
        if not _alive(child):
            break
        time.sleep(0.05)
    else:
        pytest.fail("the grandchild survived the timeout")


def _alive(pid: int) -> bool:
    """Running, not merely a zombie waiting for a reaper (PID 1 in a container may not reap)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    except OSError:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return True
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


@pytest.mark.parametrize(
    ("kind_step", "policy", "expect_rerun"),
    [
        ({"exec": {"argv": ["/bin/true"]}}, None, False),
        ({"cmd": "true"}, None, False),
        ({"file": {"path": "/tmp/x", "content": ""}}, None, True),
        ({"exec": {"argv": ["/bin/true"]}}, "rerun", True),
        ({"cmd": "true"}, "fail", False),
    ],
)
def test_interrupted_step_follows_on_interrupt(
    agent, tmp_path: Path, kind_step, policy, expect_rerun
) -> None:
    out = tmp_path / "out"
    if "file" in kind_step:
        kind_step = {"file": {"path": str(tmp_path / "f"), "content": "x"}}
    step = {"id": "s", **kind_step}
    if policy:
        step["on_interrupt"] = policy
    a = agent([step, counter_step("after", out)])
    assert a.run() == 0
    # Pretend the agent died while "s" was running, before "after" began.
    state = a.state()
    state["steps"]["baked:s"]["status"] = "running"
    del state["steps"]["baked:after"]
    state["state"] = "running"
    (a.state_dir / "state" / f"{UUID}.json").write_text(json.dumps(state))
    code = a.run()
    rec = a.step("s")
    if expect_rerun:
        assert (code, rec["status"], lines(out)) == (0, "done", 2)
    else:
        assert (code, rec["status"], lines(out)) == (1, "interrupted", 1)
        assert a.state()["error"]["code"] == "interrupted"
        assert a.run() == 1  # it stays interrupted for this content
        a.config["steps"][0]["description"] = "changed"  # new content: runs afresh
        assert a.run() == 0


def test_reboot_step_is_recorded_before_the_reboot_is_asked(agent, tmp_path: Path) -> None:
    out = tmp_path / "out"
    snapshot = tmp_path / "snapshot.json"
    state_file = tmp_path / "state-dir" / "state" / f"{UUID}.json"
    a = agent(
        [
            counter_step("before", out),
            {"id": "rb", "reboot": {"reason": "test"}},
            counter_step("after", out),
        ],
        platform_options={"reboot_command": ["/bin/cp", str(state_file), str(snapshot)]},
    )
    assert a.run() == 2
    seen = json.loads(snapshot.read_text())
    assert seen["steps"]["baked:rb"]["status"] == "done"
    assert seen["reboot_pending"]["step"] == "baked:rb"
    assert lines(out) == 1
    assert a.run() == 0  # "after the reboot"
    state = a.state()
    assert (state["boot"], lines(out), state["steps"]["baked:rb"]["reboots"]) == (2, 2, 1)


def test_3010_reboots_then_continues_and_3011_reruns(agent, tmp_path: Path) -> None:
    out = tmp_path / "out"
    rerun = tmp_path / "rerun"
    once_more = f'echo x >> "{rerun}"; [ $(wc -l < "{rerun}") -ge 2 ] || exit 195'
    a = agent(
        [
            counter_step("c3010", out, code=194),
            {"id": "c3011", "cmd": once_more},
            counter_step("z", out),
        ]
    )
    assert a.run() == 2
    assert a.step("c3010")["status"] == "done"
    assert a.run() == 2  # c3011 asked for a reboot and to run again
    assert a.step("c3011")["status"] == "pending"
    assert a.run() == 0
    assert (lines(out), lines(rerun), lines(tmp_path / "reboots")) == (2, 2, 2)
    assert a.step("c3011")["reboots"] == 1


def test_reboot_budget_turns_a_loop_into_a_failure(agent, tmp_path: Path) -> None:
    out = tmp_path / "out"
    a = agent([counter_step("loop", out, code=195, reboot_budget=2)])
    assert [a.run() for _ in range(3)] == [2, 2, 1]
    rec = a.step("loop")
    assert rec["status"] == "failed"
    assert "reboot budget (2)" in rec["error"]
    assert lines(tmp_path / "reboots") == 2


def test_changed_step_content_runs_again(agent, tmp_path: Path) -> None:
    out = tmp_path / "out"
    a = agent([counter_step("c", out)])
    assert a.run() == 0
    a.config["steps"][0]["description"] = "v2"
    assert a.run() == 0
    assert lines(out) == 2


def test_unsupported_kind_fails_before_anything_runs(agent, tmp_path: Path) -> None:
    out = tmp_path / "out"
    a = agent([counter_step("first", out), {"id": "ps", "powershell": "Write-Host hi"}])
    assert a.run() == 1
    assert lines(out) == 0
    state = a.state()
    assert state["error"]["code"] == "invalid_document"
    assert (
        "'powershell' steps are not supported on this platform (posix)" in state["error"]["message"]
    )


def test_invalid_step_runs_nothing(agent, tmp_path: Path) -> None:
    out = tmp_path / "out"
    a = agent([counter_step("first", out), {"id": "bad", "exec": {"argv": []}}])
    assert a.run() == 1
    assert lines(out) == 0
    assert "steps[1].exec.argv" in a.state()["error"]["message"]


def test_second_agent_waits_then_exits_cleanly(agent, tmp_path: Path) -> None:
    a = agent([])
    lock = AgentLock(a.state_dir)
    lock.acquire(1)
    try:
        started = time.monotonic()
        assert a.run(lock_timeout=0.3) == 3
        assert time.monotonic() - started >= 0.3
    finally:
        lock.release()
    assert a.run() == 0


def test_unreadable_state_is_refused(agent) -> None:
    a = agent([])
    assert a.run() == 0
    (a.state_dir / "state" / f"{UUID}.json").write_text("{not json")
    assert a.run() == 4


def test_answer_files_and_startup_task(agent, tmp_path: Path) -> None:
    answer = tmp_path / "unattend.xml"
    answer.write_text("<secret/>")
    marks = tmp_path / "task"
    a = agent(
        [],
        answer_files=[str(answer), str(tmp_path / "missing.xml")],
        platform_options={
            "startup_install_command": ["/bin/sh", "-c", f'echo install "$@" >> "{marks}"', "sh"],
            "startup_remove_command": ["/bin/sh", "-c", f'echo remove >> "{marks}"'],
        },
    )
    assert a.run() == 0
    assert not answer.exists()
    install, remove = marks.read_text().splitlines()
    assert install.startswith("install ")
    assert install.endswith(f"run --config {a.config_path}")
    assert remove == "remove"


def test_keep_answer_files(agent, tmp_path: Path) -> None:
    answer = tmp_path / "unattend.xml"
    answer.write_text("x")
    a = agent([], answer_files=[str(answer)], keep_answer_files=True)
    assert a.run() == 0
    assert answer.exists()


def test_output_tail_is_at_most_4_kib_of_utf8(agent) -> None:
    a = agent(
        [{"id": "wide", "cmd": "i=0; while [ $i -lt 3000 ]; do printf 'é€'; i=$((i+1)); done"}]
    )
    assert a.run() == 0
    tail = a.step("wide")["output_tail"]
    assert 4090 <= len(tail.encode("utf-8")) <= 4096
    assert set(tail) <= {"é", "€"}


def test_on_interrupt_defaults_per_kind_are_protocol_md_s() -> None:
    from vmprep.agent.engine import on_interrupt
    from vmprep.agent.stepcheck import KINDS

    rerun = {"file", "download", "registry", "env", "windows_feature", "service", "wait_for"}
    rerun |= {"rename_computer", "join_domain", "local_user", "reboot", "phone_home"}
    fail = {"exec", "cmd", "powershell", "msi"}
    assert set(KINDS) == rerun | fail  # a new kind must be given a default here and there
    for kind in KINDS:
        expected = "rerun" if kind in rerun else "fail"
        assert on_interrupt({"id": "s", kind: {}}) == expected, kind
        other = "fail" if expected == "rerun" else "rerun"
        assert on_interrupt({"id": "s", kind: {}, "on_interrupt": other}) == other
