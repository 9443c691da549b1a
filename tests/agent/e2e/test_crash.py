"""Crash/resume: SIGKILL the agent at random points, many times, and restart it.

Every run must end consistent (state readable, status 0 or 1), a non-idempotent step
(`on_interrupt: fail`) appends at most once — exactly once when the run ends done — and
idempotent steps finish.
"""

from __future__ import annotations

import json
import random
import signal
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from tests.agent.e2e.conftest import UUID, Machine, appender

TRIALS = 110


def _steps(root: Path) -> list[dict[str, Any]]:
    ledger = root / "ledger"
    slow = "; sleep 0.01"
    return [
        {
            "id": "once-a",
            "exec": {"argv": ["/bin/sh", "-c", f'echo once-a >> "{ledger}"{slow}']},
            "on_interrupt": "fail",
        },
        {"id": "conf", "file": {"path": str(root / "conf.txt"), "content": "x" * 2000}},
        {"id": "idem", "cmd": f'echo idem >> "{root / "idem"}"{slow}', "on_interrupt": "rerun"},
        appender("once-b", ledger),  # exec: on_interrupt defaults to fail
        {"id": "conf2", "file": {"path": str(root / "conf2.txt"), "content": "y"}},
    ]


def _trial(pyz: Path, root: Path, seed: int) -> dict[str, Any]:
    rnd = random.Random(seed)
    root.mkdir()
    dmi = root / "sys/sys/class/dmi/id"
    dmi.mkdir(parents=True)
    (dmi / "product_uuid").write_text(UUID + "\n")
    config = {
        "format": 1,
        "identity": ["smbios-uuid"],
        "steps": _steps(root),
        "platform_options": {
            "sys_root": str(root / "sys"),
            "boot_id_path": str(root / "no-boot-id"),
        },
    }
    m = Machine(root, pyz, config)
    kills = 0
    for _ in range(rnd.randint(1, 4)):
        proc = m.start()
        time.sleep(rnd.uniform(0.0, 0.25))
        proc.send_signal(signal.SIGKILL)
        if proc.wait() == -signal.SIGKILL:
            kills += 1
    time.sleep(0.03)  # let an orphaned step child (own session) finish its append
    final = m.run(timeout=30)
    code, status = m.status()
    ledger = (root / "ledger").read_text().splitlines() if (root / "ledger").exists() else []
    state = json.loads((m.state_dir / "state" / f"{UUID}.json").read_text())
    return {
        "seed": seed,
        "kills": kills,
        "final": final.returncode,
        "status": code,
        "body": status,
        "ledger": ledger,
        "state": state,
        "stderr": final.stderr,
    }


def _check(result: dict[str, Any]) -> None:
    state, ledger = result["state"], result["ledger"]
    assert result["final"] in (0, 1), result
    assert result["status"] == result["final"], result
    steps = state["steps"]
    for name in ("once-a", "once-b"):
        count = ledger.count(name)
        assert count <= 1, f"{name} ran {count} times: {result}"
        rec = steps.get(f"baked:{name}")
        if rec is not None and rec["status"] == "done":
            assert count == 1, result
    if result["final"] == 0:
        assert state["state"] == "done"
        assert ledger.count("once-a") == 1
        assert ledger.count("once-b") == 1
        assert all(rec["status"] == "done" for rec in steps.values()), steps
    else:
        assert state["state"] == "failed"
        assert state["error"]["code"] == "interrupted", state["error"]
        interrupted = [k for k, r in steps.items() if r["status"] == "interrupted"]
        assert interrupted, steps
        assert set(interrupted) <= {"baked:once-a", "baked:once-b"}, steps
    assert not [r for r in steps.values() if r["status"] == "running"]


@pytest.mark.slow
def test_sigkill_at_random_points_then_resume(agent_pyz: Path, tmp_path: Path) -> None:
    seed = random.randrange(1 << 30)
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(
            pool.map(lambda i: _trial(agent_pyz, tmp_path / f"t{i}", seed + i), range(TRIALS))
        )
    for result in results:
        _check(result)
    outcomes = {(r["final"], r["kills"] > 0) for r in results}
    # The random kills must really have interrupted runs in both ways.
    assert sum(r["kills"] for r in results) >= TRIALS, outcomes
    assert any(r["final"] == 1 for r in results), (
        f"no kill landed inside a fail-policy step (seed {seed})"
    )
    assert any(r["final"] == 0 and r["kills"] for r in results), f"seed {seed}"
