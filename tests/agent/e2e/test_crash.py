"""Crash/resume: SIGKILL the agent at random points, many times, and restart it.

Every run must end consistent (state readable, `status` agreeing with `run`), a
non-idempotent step (`on_interrupt: fail`) appends at most once — exactly once when the run
ends done — and nothing is left `running`. Half the trials also phone home (fetch, verify,
remote steps with a non-idempotent one), so kills land in the network path too.
"""

from __future__ import annotations

import json
import random
import signal
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from tests.agent.e2e.conftest import Machine, Service, appender

TRIALS = 110
ONCE = ("baked:once-a", "baked:once-b", "remote:once-r")


def _steps(root: Path) -> list[dict[str, Any]]:
    ledger = root / "ledger"
    return [
        {
            "id": "once-a",
            "exec": {"argv": ["/bin/sh", "-c", f'echo once-a >> "{ledger}"; sleep 0.01']},
            "on_interrupt": "fail",
        },
        {"id": "conf", "file": {"path": str(root / "conf.txt"), "content": "x" * 2000}},
        {
            "id": "idem",
            "cmd": f'echo idem >> "{root / "idem"}"; sleep 0.01',
            "on_interrupt": "rerun",
        },
        appender("once-b", ledger),  # exec: on_interrupt defaults to fail
        {"id": "conf2", "file": {"path": str(root / "conf2.txt"), "content": "y"}},
    ]


def _wait_for_lines(path: Path, count: int, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 10
    while proc.poll() is None and time.monotonic() < deadline:
        if path.exists() and len(path.read_text().splitlines()) >= count:
            return
        time.sleep(0.002)


def _trial(pyz: Path, root: Path, seed: int, service: Service | None) -> dict[str, Any]:
    rnd = random.Random(seed)
    root.mkdir()
    uuid = f"{seed % 10**8:08d}-0000-4000-8000-00155d010203"
    dmi = root / "sys/sys/class/dmi/id"
    dmi.mkdir(parents=True)
    (dmi / "product_uuid").write_text(uuid + "\n")
    config: dict[str, Any] = {
        "format": 1,
        "identity": ["smbios-uuid"],
        "steps": _steps(root),
        "platform_options": {
            "sys_root": str(root / "sys"),
            "boot_id_path": str(root / "no-boot-id"),
        },
    }
    if service is not None:
        remote = [
            appender("once-r", root / "ledger"),
            {"id": "conf-r", "file": {"path": str(root / "r.txt"), "content": "r"}},
        ]
        service.publish(remote, instance_id=uuid)
        # generous network budget: a loaded CI machine must not turn this into "unreachable"
        retry = {"attempts": 10, "initial": "100ms", "max": "500ms"}
        config["phone_home"] = service.phone_home(timeout="20s", retry=retry)
    m = Machine(root, pyz, config)
    kills = 0
    for _ in range(rnd.randint(1, 4)):
        proc = m.start()
        if rnd.random() < 0.5:  # at a random moment
            time.sleep(rnd.uniform(0.0, 0.3))
        else:  # just after a non-idempotent step wrote its line: inside it, whatever the load
            _wait_for_lines(root / "ledger", rnd.randint(1, 3), proc)
            time.sleep(rnd.uniform(0.0, 0.02))
        proc.send_signal(signal.SIGKILL)
        if proc.wait() == -signal.SIGKILL:
            kills += 1
    time.sleep(0.03)  # let an orphaned step child (own session) finish its append
    final = m.run(timeout=60)
    code, _ = m.status()
    ledger_file = root / "ledger"
    return {
        "seed": seed,
        "remote": service is not None,
        "kills": kills,
        "final": final.returncode,
        "status": code,
        "ledger": ledger_file.read_text().splitlines() if ledger_file.exists() else [],
        "state": json.loads((m.state_dir / "state" / f"{uuid}.json").read_text()),
        "stderr": final.stderr,
    }


def _check(result: dict[str, Any]) -> None:
    state, ledger = result["state"], result["ledger"]
    assert result["final"] in (0, 1), result
    assert result["status"] == result["final"], result
    steps = state["steps"]
    for key in ONCE:
        name = key.split(":")[1]
        count = ledger.count(name)
        assert count <= 1, f"{name} ran {count} times: {result}"
        rec = steps.get(key)
        if rec is not None and rec["status"] == "done":
            assert count == 1, result
    assert not [r for r in steps.values() if r["status"] == "running"], steps
    if result["final"] == 0:
        assert state["state"] == "done"
        assert all(rec["status"] == "done" for rec in steps.values()), steps
        assert ledger.count("once-a") == ledger.count("once-b") == 1
        assert ledger.count("once-r") == (1 if result["remote"] else 0)
    else:
        assert state["state"] == "failed"
        assert state["error"]["code"] == "interrupted", state["error"]
        interrupted = {k for k, r in steps.items() if r["status"] == "interrupted"}
        assert interrupted, steps
        assert interrupted <= set(ONCE), steps


@pytest.mark.slow
def test_sigkill_at_random_points_then_resume(
    agent_pyz: Path, tmp_path: Path, service: Service
) -> None:
    seed = random.randrange(1 << 30)

    def trial(i: int) -> dict[str, Any]:
        return _trial(agent_pyz, tmp_path / f"t{i}", seed + i, service if i % 2 else None)

    with ThreadPoolExecutor(max_workers=6) as pool:
        results = list(pool.map(trial, range(TRIALS)))
    for result in results:
        _check(result)
    # The random kills must really have interrupted runs, in both ways.
    assert sum(r["kills"] for r in results) >= TRIALS, f"seed {seed}"
    assert any(r["final"] == 1 for r in results), (
        f"no kill landed in a fail-policy step (seed {seed})"
    )
    assert any(r["final"] == 0 and r["kills"] for r in results), f"seed {seed}"
    assert any(r["final"] == 0 and r["remote"] and r["kills"] for r in results), f"seed {seed}"
