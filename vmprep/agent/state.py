"""Per-instance state: one JSON file per instance id, written atomically, and the run lock.

A write goes to a temporary file that is flushed and fsynced, then renamed over the old file
(and, on POSIX, the directory is fsynced), so a kill or a power cut at any point leaves the old
state or the new one, never a mix. `state_dir/state/current` names the instance the last run
worked for, so `status` needs no identification.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import time
from pathlib import Path

from vmprep.agent.logs import utc_now
from vmprep.protocol.atomic import atomic_write, read_retrying

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing is not imported at run time: it costs start-up time
    from typing import Any

FORMAT = 1
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


class StateError(Exception):
    """The state file exists but cannot be read: the agent refuses to guess."""


class LockTimeout(Exception):
    """Another agent holds the lock."""


def new_state(instance_id: str) -> dict[str, Any]:
    return {
        "format": FORMAT,
        "instance_id": instance_id,
        "state": "running",
        "boot": 0,
        "boot_id": None,
        "reboot_pending": None,
        "created_at": utc_now(),
        "updated_at": None,
        "finished_at": None,
        "accepted": None,
        "completed_serial": None,
        "document": None,
        "baked_ids": [],
        "steps": {},
        "error": None,
    }


class StateStore:
    def __init__(self, state_dir: Path) -> None:
        self.dir = state_dir / "state"

    def path(self, instance_id: str) -> Path:
        if not _ID.fullmatch(instance_id):
            raise StateError(f"not a valid instance id: {instance_id!r}")
        return self.dir / f"{instance_id}.json"

    def load(self, instance_id: str, *, clean: bool = False) -> dict[str, Any] | None:
        """The state, or None. Only the lock holder passes `clean`: a reader (`status`) that
        removed temporary files would pull the file from under a write in progress."""
        path = self.path(instance_id)
        if clean:
            self._remove_stale_temps(path)
        try:
            raw = read_retrying(path)
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise StateError(f"{path}: cannot read: {exc}") from None
        try:
            data = json.loads(raw)
        except (UnicodeDecodeError, ValueError) as exc:
            raise StateError(f"{path}: not valid JSON: {exc}") from None
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise StateError(f"{path}: not a vmprep agent state file (format {FORMAT})")
        if data.get("instance_id") != instance_id or not isinstance(data.get("steps"), dict):
            raise StateError(f"{path}: inconsistent state file")
        return data

    @staticmethod
    def _remove_stale_temps(path: Path) -> None:
        """Temp files of writes a kill interrupted (the rename never happened): garbage."""
        mine = f".{path.name}.tmp-{os.getpid()}"
        for tmp in path.parent.glob(f".{path.name}.tmp-*") if path.parent.is_dir() else ():
            if tmp.name != mine:
                with contextlib.suppress(OSError):  # gone already, or held open: next time
                    tmp.unlink()

    def save(self, state: dict[str, Any]) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        state["updated_at"] = utc_now()
        data = json.dumps(state, indent=1, sort_keys=True).encode("utf-8")
        atomic_write(self.path(state["instance_id"]), data)

    def set_current(self, instance_id: str) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        pointer = self.dir / "current"
        try:
            if pointer.read_text(encoding="utf-8").strip() == instance_id:
                return
        except OSError:
            pass
        atomic_write(pointer, instance_id.encode("utf-8") + b"\n")

    def current(self) -> str | None:
        try:
            return read_retrying(self.dir / "current").decode("utf-8").strip() or None
        except FileNotFoundError:
            return None
        except (OSError, UnicodeDecodeError) as exc:
            raise StateError(f"cannot read {self.dir / 'current'}: {exc}") from None


class AgentLock:
    """An exclusive lock on state_dir/agent.lock, released by the OS if the process dies."""

    def __init__(self, state_dir: Path) -> None:
        self.path = state_dir / "agent.lock"
        self._fd: int | None = None

    def _try(self, fd: int) -> bool:
        if os.name == "nt":
            import msvcrt

            try:
                msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)  # type: ignore[attr-defined]
            except OSError:
                return False
            return True
        import fcntl

        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return False
        return True

    def acquire(self, timeout: float, *, poll: float = 0.1) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        deadline = time.monotonic() + timeout
        while not self._try(fd):
            if time.monotonic() >= deadline:
                os.close(fd)
                raise LockTimeout(f"another agent is running (lock {self.path})")
            time.sleep(poll)
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd

    def held_elsewhere(self) -> bool:
        """Whether another process holds the lock now (an agent is running)."""
        if not self.path.exists():
            return False
        try:
            fd = os.open(self.path, os.O_RDWR)
        except OSError:
            return False
        try:
            if not self._try(fd):
                return True
            if os.name == "nt":
                import msvcrt

                msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)  # type: ignore[attr-defined]
            return False
        finally:
            os.close(fd)

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
