"""The Windows host `vmprep sysprep` runs on (the reference VM): winreg, ctypes and subprocess.
Only imported and exercised on Windows; off Windows, `--root DIR` uses `DirectoryPlatform`."""

from __future__ import annotations

import csv
import io
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from vmprep.sysprep.platform import CommandResult, environ_drive, run_argv
from vmprep.sysprep.probes import ProbeError

if sys.platform == "win32":
    import ctypes
    import winreg


def _split(key: str) -> str:
    for prefix in ("HKLM\\", "HKEY_LOCAL_MACHINE\\"):
        if key.upper().startswith(prefix):
            return key[len(prefix) :]
    raise ValueError(f"only HKLM keys are read: {key}")


class WindowsPlatform:
    def __init__(self) -> None:
        self.drive = environ_drive()
        self.root = Path(self.drive + "\\")
        # In a venv, the base interpreter: it is what stays installed for the agent.
        base = getattr(sys, "_base_executable", None) or sys.executable
        self.interpreter: str | None = base or None

    def is_windows(self) -> bool:
        return sys.platform == "win32"

    def is_admin(self) -> bool:
        if sys.platform == "win32":
            return bool(ctypes.windll.shell32.IsUserAnAdmin())
        return False

    def reg_value(self, key: str, name: str) -> Any:
        if sys.platform == "win32":
            # KEY_WOW64_64KEY: a 32-bit Python must still read the 64-bit HKLM\SOFTWARE.
            access = winreg.KEY_READ | winreg.KEY_WOW64_64KEY
            try:
                with winreg.OpenKey(winreg.HKEY_LOCAL_MACHINE, _split(key), 0, access) as key_:
                    value, _type = winreg.QueryValueEx(key_, name)
            except FileNotFoundError:
                return None
            return value
        return None

    def reg_key_exists(self, key: str) -> bool:
        if sys.platform == "win32":
            access = winreg.KEY_READ | winreg.KEY_WOW64_64KEY
            try:
                with winreg.OpenKey(winreg.HKEY_LOCAL_MACHINE, _split(key), 0, access):
                    return True
            except FileNotFoundError:
                return False
        return False

    def run(self, argv: Sequence[str], *, timeout: float = 300) -> CommandResult:
        return run_argv(argv, timeout=timeout)

    def processes(self) -> list[str]:
        """Image names from `tasklist /fo csv /nh`. A tasklist that fails or lists nothing (a
        working one lists at least System and itself) raises ProbeError: an empty list would
        read as "nothing is running" and pass the checks it could not make."""
        result = run_argv(["tasklist.exe", "/fo", "csv", "/nh"], timeout=60)
        rows = [row for row in csv.reader(io.StringIO(result.stdout)) if row]
        if result.returncode != 0 or not rows:
            detail = (result.stderr or result.stdout).strip() or "no output"
            raise ProbeError(f"tasklist.exe listed no process (exit {result.returncode}: {detail})")
        return [row[0].casefold() for row in rows]

    def short_path(self, path: str) -> str:
        if sys.platform == "win32":
            size = ctypes.windll.kernel32.GetShortPathNameW(path, None, 0)
            if size:
                buffer = ctypes.create_unicode_buffer(size)
                ctypes.windll.kernel32.GetShortPathNameW(path, buffer, size)
                return str(buffer.value)
        return path


def sysnative(path: Path) -> Path:
    """A 32-bit Python on 64-bit Windows sees SysWOW64 as System32, which has no sysprep.exe."""
    if "PROCESSOR_ARCHITEW6432" not in os.environ:
        return path
    parts = list(path.parts)
    for index, part in enumerate(parts):
        if part.casefold() == "system32":
            parts[index] = "Sysnative"
            return Path(*parts)
    return path
