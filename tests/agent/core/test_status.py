"""`status` exit codes (0 done, 1 failed, 2 running, 3 not started, 4 unreadable) and formats."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.agent.core.conftest import UUID, lock_held_by_another_process
from vmprep.agent.cli import main
from vmprep.agent.state import StateStore, new_state
from vmprep.agent.status import status


def _status(state_dir: Path, *args: str) -> tuple[int, str]:
    result = subprocess.run(
        [sys.executable, "-m", "vmprep.agent", "status", "--state-dir", str(state_dir), *args],
        capture_output=True,
        text=True,
        check=False,
    )
    return result.returncode, result.stdout


def test_not_started(tmp_path: Path) -> None:
    code, out = _status(tmp_path)
    assert code == 3
    assert "not started" in out


def test_done_and_failed_and_json(agent, tmp_path: Path) -> None:
    a = agent([{"id": "ok", "cmd": "true"}])
    assert a.run() == 0
    code, out = _status(a.state_dir, "--format", "json")
    body = json.loads(out)
    assert (code, body["state"], body["instance_id"]) == (0, "done", UUID)
    assert body["steps"][0]["id"] == "ok"
    assert body["steps"][0]["status"] == "done"
    a.config["steps"] = [{"id": "bad", "cmd": "exit 3"}]
    assert a.run() == 1
    code, out = _status(a.state_dir)
    assert code == 1
    assert "bad" in out
    assert "failed" in out


def test_running_and_wait_timeout(tmp_path: Path) -> None:
    store = StateStore(tmp_path)
    store.save(new_state("abc"))
    store.set_current("abc")
    started = time.monotonic()
    code, _ = status(tmp_path, wait=True, timeout=0.3, poll=0.05)
    assert code == 2
    assert time.monotonic() - started >= 0.3


def test_wait_returns_when_done(tmp_path: Path) -> None:
    store = StateStore(tmp_path)
    state = new_state("abc")
    store.save(state)
    store.set_current("abc")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "vmprep.agent",
            "status",
            "--wait",
            "--timeout",
            "20s",
            "--state-dir",
            str(tmp_path),
        ],
        stdout=subprocess.DEVNULL,
    )
    time.sleep(0.3)
    state["state"] = "done"
    store.save(state)
    assert proc.wait(timeout=10) == 0


def test_unreadable(tmp_path: Path) -> None:
    store = StateStore(tmp_path)
    store.set_current("abc")
    (tmp_path / "state" / "abc.json").write_text("garbage")
    code, out = _status(tmp_path)
    assert code == 4
    assert "unreadable" in out


def test_usage_error_is_not_a_status_code(capsys) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["status", "--format", "xml"])
    assert exc.value.code == 64


def test_version() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "vmprep.agent", "--version"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.strip() == "vmprep-agent 0.1.0"


def opts(**changed: object) -> dict[str, object]:
    return {"lock_timeout": 60.0, "defer_reboots": False, "stop_after": None, **changed}


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["run", "--config", "a.json"], ("run", Path("a.json"), None, opts())),
        (
            ["run", "--config=a.json", "--state-dir", "s", "--lock-timeout", "2.5"],
            ("run", Path("a.json"), Path("s"), opts(lock_timeout=2.5)),
        ),
        (
            ["run", "--config", "a.json", "--stop-after", "300", "--defer-reboots"],
            ("run", Path("a.json"), None, opts(defer_reboots=True, stop_after=300.0)),
        ),
        (["launch", "--config", "a.json"], ("launch", Path("a.json"), None, opts())),
        (["launch", "--config", "a.json", "--defer-reboots"], None),
        (["run", "--config", "a", "--defer-reboots", "--defer-reboots"], None),
        (["launch", "--config", "a.json", "--state-dir", "s"], None),
        (["launch"], None),
        (["run"], None),
        (["run", "--config"], None),
        (["run", "--config", "a", "--config", "b"], None),
        (["run", "--config", "a", "--help"], None),
        (["run", "--config", "a", "--lock-timeout", "soon"], None),
        (["status"], None),
    ],
)
def test_run_is_parsed_without_argparse_or_handed_to_it(argv, expected) -> None:
    from vmprep.agent.cli import _plain_run

    assert _plain_run(argv) == expected


def test_run_usage_errors_go_through_argparse(capsys) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["run", "--state-dir", "x"])
    assert exc.value.code == 64
    assert "--config" in capsys.readouterr().err


def test_run_with_a_broken_agent_json(tmp_path: Path, capsys) -> None:
    (tmp_path / "agent.json").write_text('{"steps": 1}')
    assert main(["run", "--config", str(tmp_path / "agent.json")]) == 4
    assert "steps: expected a list" in capsys.readouterr().err


def test_status_says_whether_an_agent_is_running(tmp_path: Path) -> None:
    from vmprep.agent.state import AgentLock

    store = StateStore(tmp_path)
    store.save(new_state("abc"))
    store.set_current("abc")
    _, text = status(tmp_path)
    assert "no agent running now" in text
    with lock_held_by_another_process(tmp_path):
        code, out = _status(tmp_path, "--format", "json")
        assert (code, json.loads(out)["agent_running"]) == (2, True)
        assert AgentLock(tmp_path).held_elsewhere()
    assert not AgentLock(tmp_path).held_elsewhere()
