"""Kill points across a deferred restart: the real agent (agent.pyz) SIGKILLed at a known
point — inside the step that asks for the restart, between it and the step that needs the
restart, inside the reboot command — then started again. Whatever the kill point, the
restart happens exactly once and before the step that needs it (`after_reboot: true`).

One ledger records everything in order: the steps' own lines and the reboot command's. The
reboot command also moves the boot id on, as a real restart would."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from tests.agent.e2e.conftest import UUID, Machine

pytestmark = pytest.mark.slow


def _gate(root: Path, name: str) -> str:
    """Shell: note that `name` started, then wait until its gate file exists."""
    return f'echo {name}-started >> "{root / "ledger"}"; while [ ! -e "{root / name}" ]; do sleep 0.01; done'


def _steps(root: Path) -> list[dict[str, Any]]:
    ledger = root / "ledger"
    return [
        {
            "id": "join",  # asks for a restart (3010 arrives as 194 on POSIX), deferred
            "cmd": f'{_gate(root, "in-join")}; echo join >> "{ledger}"; exit 194',
            "reboot_timing": "deferred",
            "on_interrupt": "rerun",
        },
        {"id": "between", "cmd": _gate(root, "in-between"), "on_interrupt": "rerun"},
        {
            "id": "needs",
            "cmd": f'echo needs >> "{ledger}"',
            "after_reboot": True,
        },
    ]


def _machine(root: Path, pyz: Path) -> Machine:
    dmi = root / "sys/sys/class/dmi/id"
    dmi.mkdir(parents=True)
    (dmi / "product_uuid").write_text(UUID + "\n")
    (root / "boot_id").write_text("1")
    ledger, boot = root / "ledger", root / "boot_id"
    reboot = (
        f'{_gate(root, "in-reboot")}; echo reboot >> "{ledger}"; '
        f'echo $(( $(cat "{boot}") + 1 )) > "{boot}"'
    )
    config = {
        "format": 1,
        "identity": ["smbios-uuid"],
        "steps": _steps(root),
        "platform_options": {
            "sys_root": str(root / "sys"),
            "boot_id_path": str(boot),
            "reboot_command": ["/bin/sh", "-c", reboot],
        },
    }
    return Machine(root, pyz, config)


def _wait_for(path: Path, line: str, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if path.exists() and line in path.read_text().splitlines():
            return
        assert proc.poll() is None, f"the agent ended before {line!r}"
        time.sleep(0.005)
    raise AssertionError(f"{line!r} never came")


def _drive(m: Machine, root: Path) -> list[str]:
    """Open every gate and run the agent until it is done; the ledger."""
    for gate in ("in-join", "in-between", "in-reboot"):
        (root / gate).touch()
    # A reboot command the kill interrupted goes on (the machine going down): let it finish.
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        lines = (root / "ledger").read_text().splitlines()
        if "in-reboot-started" not in lines or "reboot" in lines:
            break
        time.sleep(0.01)
    for _ in range(5):
        result = m.run(timeout=60)
        if result.returncode != 2:
            break
    assert result.returncode == 0, result.stderr
    return [x for x in (root / "ledger").read_text().splitlines() if not x.endswith("-started")]


@pytest.mark.parametrize("kill_in", ["in-join", "in-between", "in-reboot"])
def test_a_deferred_restart_survives_a_kill(agent_pyz: Path, tmp_path: Path, kill_in: str) -> None:
    m = _machine(tmp_path, agent_pyz)
    gates = ["in-join", "in-between", "in-reboot"]
    for gate in gates[: gates.index(kill_in)]:  # every gate before the kill point is open
        (tmp_path / gate).touch()
    proc = m.start()
    _wait_for(tmp_path / "ledger", f"{kill_in}-started", proc)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    state = json.loads((m.state_dir / "state" / f"{UUID}.json").read_text())
    if kill_in == "in-between":  # the restart was recorded with the step that asked for it
        assert state["steps"]["baked:join"]["status"] == "done"
        assert state["restart_due"] == ["baked:join"]
    if kill_in == "in-reboot":  # recorded as carried out before the reboot command ran
        assert state["reboot_pending"]["steps"] == ["baked:join"]
    ledger = _drive(m, tmp_path)
    assert ledger.count("needs") == 1
    assert ledger.index("needs") > ledger.index("reboot") > ledger.index("join")
    assert ledger.count("reboot") == 1
    final = m.state()
    assert final["state"] == "done"
    assert final["restart_due"] is None
