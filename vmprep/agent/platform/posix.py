"""The real POSIX implementation: used on Linux/macOS and by the end-to-end tests.

`platform_options` (agent.json) on POSIX:
- `reboot_command`: argv run to reboot (default `["/sbin/shutdown", "-r", "now"]`);
- `startup_install_command` / `startup_remove_command`: argv run to register and remove the
  agent's start at boot (e.g. `systemctl enable/disable` of a unit); the agent's own argv is
  appended to the install command. Without them the init system is assumed to handle it.
- `boot_id_path`: file whose content identifies the boot (default
  `/proc/sys/kernel/random/boot_id`).
- `ready_command`: argv that exits 0 once the system's own first-boot setup is done; the
  agent waits for it before the first step that may reboot (readiness.py).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
from pathlib import Path

from vmprep.agent.platform.base import Platform, ProcResult

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing is not imported at run time: it costs start-up time
    from typing import Any


class PosixPlatform(Platform):
    name = "posix"
    kinds = frozenset(
        {"exec", "cmd", "file", "download", "env", "wait_for", "reboot", "phone_home"}
    )

    # Exit statuses have 8 bits here: 3010 and 3011 arrive as 194 and 195.
    reboot_exit_codes = (3010 & 0xFF, 3011 & 0xFF)

    def unsupported(self, kind: str, body: Any) -> str | None:
        if kind == "wait_for" and isinstance(body, dict) and "service" in body:
            return "'wait_for.service' waits for a Windows service: not supported on this platform (posix)"
        return super().unsupported(kind, body)

    def popen_kwargs(self) -> dict[str, Any]:
        return {"start_new_session": True}

    def kill_tree(self, proc: subprocess.Popen[bytes]) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)

    def cmd(self, script: str, *, timeout: float | None) -> ProcResult:
        return self.run(["/bin/sh", "-c", script], timeout=timeout)

    # -- env: process scope, or persisted to state_dir/environment.json -------------------------
    def persist_env(self, name: str, value: str | None, mode: str = "set") -> str:
        from vmprep.protocol.atomic import atomic_write

        path = self.state_dir / "environment.json"
        try:
            saved = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            saved = {}
        if value is not None and mode != "set":
            from vmprep.agent.envvars import edit_list

            current = saved.get(name, os.environ.get(name))
            value = edit_list(current, value, mode, os.pathsep, ignore_case=False)
        if value is None:
            saved.pop(name, None)
            os.environ.pop(name, None)
        else:
            saved[name] = value
            os.environ[name] = value
        self.state_dir.mkdir(parents=True, exist_ok=True)
        atomic_write(path, json.dumps(saved, sort_keys=True, indent=1).encode("utf-8"))
        return f"{name} persisted in {path}"

    def load_persisted_env(self) -> None:
        try:
            saved = json.loads((self.state_dir / "environment.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return
        if isinstance(saved, dict):
            os.environ.update({str(k): str(v) for k, v in saved.items()})

    # -- before a step that may reboot ---------------------------------------------------------
    def setup_pending(self) -> str | None:
        """`ready_command` (e.g. `["cloud-init", "status", "--wait"]`): not ready until it
        exits 0. Without it there is nothing to wait for."""
        argv = self.options.get("ready_command")
        if not argv:
            return None
        result = self.run([str(a) for a in argv], timeout=60)
        if result.exit_code == 0:
            return None
        return f"{' '.join(map(str, argv))} exited {result.exit_code}"

    # -- boot, reboot, startup -----------------------------------------------------------------
    def boot_id(self) -> str | None:
        path = self.options.get("boot_id_path", "/proc/sys/kernel/random/boot_id")
        try:
            return Path(path).read_text(encoding="utf-8").strip() or None
        except OSError:
            return None

    def reboot(self, reason: str) -> ProcResult:
        argv = list(self.options.get("reboot_command") or ["/sbin/shutdown", "-r", "now"])
        return self.run(argv, timeout=60)

    def install_startup_task(self, config_path: Path, *, replace: bool = True) -> ProcResult | None:
        argv = self.options.get("startup_install_command")
        if not argv:
            return None
        return self.run([*argv, *self.agent_argv(config_path)], timeout=60)

    def remove_startup_task(self) -> ProcResult | None:
        argv = self.options.get("startup_remove_command")
        return self.run(list(argv), timeout=60) if argv else None

    def start_agent(self, config_path: Path) -> ProcResult:
        """`run` in a detached child: its own session, no terminal, standard streams on
        /dev/null (it logs to state_dir/logs), not waited for; it outlives this process."""
        proc = subprocess.Popen(
            self.agent_argv(config_path),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        proc.returncode = 0  # never waited for: this process exits first, init reaps it
        return ProcResult(0, f"started pid {proc.pid}")
