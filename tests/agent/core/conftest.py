"""In-process harness: agent.json in a temp dir, a fake /sys for identity, run and read state."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from vmprep.agent.run import run_agent

UUID = "4f2c9a1e-0000-4000-8000-00155d010203"


@dataclass
class Agent:
    root: Path
    config: dict[str, Any]

    @property
    def config_path(self) -> Path:
        return self.root / "agent.json"

    @property
    def state_dir(self) -> Path:
        return self.root / "state-dir"

    def write(self) -> None:
        self.config_path.write_text(json.dumps(self.config), encoding="utf-8")

    def run(self, lock_timeout: float = 5.0) -> int:
        self.write()
        return run_agent(self.config_path, self.state_dir, lock_timeout=lock_timeout)

    def state(self, instance_id: str = UUID) -> dict[str, Any]:
        path = self.state_dir / "state" / f"{instance_id}.json"
        data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        return data

    def step(self, step_id: str, source: str = "baked") -> dict[str, Any]:
        rec: dict[str, Any] = self.state()["steps"][f"{source}:{step_id}"]
        return rec

    def log(self) -> str:
        return (self.state_dir / "logs" / "agent.log").read_text(encoding="utf-8")

    def new_boot(self) -> None:
        boot = self.root / "boot_id"
        boot.write_text(str(int(boot.read_text() or "0") + 1))

    def set_uuid(self, value: str) -> None:
        (self.root / "sys/sys/class/dmi/id/product_uuid").write_text(value + "\n")


def make_agent(root: Path, steps: list[dict[str, Any]], **extra: Any) -> Agent:
    """An agent in `root`: agent.json, a fake /sys with UUID, a boot id, a reboot recorder."""
    sys_root = root / "sys"
    dmi = sys_root / "sys/class/dmi/id"
    dmi.mkdir(parents=True, exist_ok=True)
    (dmi / "product_uuid").write_text(UUID.upper() + "\n")
    (sys_root / "sys/class/net").mkdir(parents=True, exist_ok=True)
    (root / "boot_id").write_text("1")
    options = {
        "sys_root": str(sys_root),
        "boot_id_path": str(root / "boot_id"),
        "reboot_command": ["/bin/sh", "-c", f"echo reboot >> {root / 'reboots'}"],
    }
    options.update(extra.pop("platform_options", {}))
    config = {
        "format": 1,
        "image": {"name": "t", "os": "windows-server-2022", "architecture": "amd64"},
        "identity": ["smbios-uuid"],
        "variables": {},
        "phone_home": None,
        "steps": steps,
        "secrets": {},
        "platform_options": options,
        "log_level": "debug",
    }
    config.update(extra)
    return Agent(root, config)


@pytest.fixture
def agent(tmp_path: Path) -> Callable[..., Agent]:
    return lambda steps, **extra: make_agent(tmp_path, steps, **extra)


def counter_step(step_id: str, path: Path, *, code: int = 0, **extra: Any) -> dict[str, Any]:
    """An exec step that appends a line to `path` (so runs can be counted) and exits `code`."""
    script = f'echo x >> "{path}"; exit {code}'
    return {"id": step_id, "exec": {"argv": ["/bin/sh", "-c", script]}, **extra}


def lines(path: Path) -> int:
    return len(path.read_text().splitlines()) if path.exists() else 0


HOLD_LOCK = (
    "import sys, time; from pathlib import Path; from vmprep.agent.state import AgentLock; "
    "AgentLock(Path(sys.argv[1])).acquire(5); print('locked', flush=True); time.sleep(30)"
)


@contextmanager
def lock_held_by_another_process(state_dir: Path) -> Iterator[None]:
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, str(state_dir)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "locked"
        yield
    finally:
        holder.kill()
        holder.wait()
        assert holder.stdout is not None
        holder.stdout.close()
