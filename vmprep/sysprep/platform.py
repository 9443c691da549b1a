"""The one seam for all Windows access: registry reads, command runs, processes, paths.

`WindowsPlatform` (vmprep/sysprep/winhost.py) is the real thing (winreg, ctypes, subprocess)
and stays thin: it is only exercised on Windows. `DirectoryPlatform` answers from data (a test fixture, or the JSON file
`<root>/.vmprep-fake-platform.json` when `--root DIR` stands for the system drive) and records
every command it is asked to run. Sysprep itself is not run through `Platform.run`: it runs
through `vmprep.sysprep.run` as a real process on every host, so the fake sysprep of the tests
goes through the same code as the real one.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any, Protocol

from vmprep.errors import InputError

FAKE_PLATFORM_FILE = ".vmprep-fake-platform.json"
NOT_FOUND = 127  # returncode when the program does not exist (as a POSIX shell reports it)
TIMED_OUT = 124  # returncode when the program ran past its timeout (as timeout(1) reports it)


@dataclass(frozen=True)
class CommandResult:
    argv: tuple[str, ...]
    returncode: int
    stdout: str = ""
    stderr: str = ""


class Platform(Protocol):
    """What preflight, install and run need from the machine."""

    @property
    def root(self) -> Path:
        """The system drive as a host path (`C:\\` on Windows, a directory in tests)."""

    @property
    def drive(self) -> str:
        """The system drive as Windows names it, e.g. `C:`."""

    @property
    def interpreter(self) -> str | None:
        """Windows path of the Python running vmprep (the agent's default interpreter)."""

    def is_windows(self) -> bool: ...
    def is_admin(self) -> bool: ...
    def reg_value(self, key: str, name: str) -> Any:
        """The value `name` under `HKLM\\...` `key`, or None when the key or value is absent."""

    def reg_key_exists(self, key: str) -> bool: ...
    def run(self, argv: Sequence[str], *, timeout: float = 300) -> CommandResult: ...
    def processes(self) -> list[str]:
        """Image names of the running processes, lower case (`tiworker.exe`)."""

    def short_path(self, path: str) -> str:
        """The 8.3 form of an existing path given as `argv_path` returns it."""


def run_argv(argv: Sequence[str], *, timeout: float) -> CommandResult:
    """Run a program (argv, never a shell string), capture its output as text."""
    args = tuple(argv)
    try:
        proc = subprocess.run(
            args,
            capture_output=True,
            text=True,
            encoding="utf-8",
            errors="replace",
            timeout=timeout,
            check=False,
        )
    except FileNotFoundError:
        return CommandResult(args, NOT_FOUND, "", f"{args[0]}: program not found")
    except subprocess.TimeoutExpired:
        return CommandResult(args, TIMED_OUT, "", f"{args[0]}: no answer after {timeout:g}s")
    return CommandResult(args, proc.returncode, proc.stdout, proc.stderr)


def windows_path(platform: Platform, rel: str) -> str:
    """`Windows/Panther/unattend.xml` -> `C:\\Windows\\Panther\\unattend.xml`."""
    return str(PureWindowsPath(platform.drive + "\\", *PurePosixPath(rel).parts))


def host_path(platform: Platform, win_path: str) -> Path | None:
    """The host path of a Windows path on the system drive, None for any other drive."""
    pure = PureWindowsPath(win_path)
    if pure.drive.casefold() != platform.drive.casefold() or not pure.root:
        return None
    return platform.root.joinpath(*pure.parts[1:])


def _norm_key(key: str) -> str:
    key = key.replace("/", "\\").strip("\\")
    for long, short in (("HKEY_LOCAL_MACHINE\\", "HKLM\\"),):
        if key.upper().startswith(long):
            key = short + key[len(long) :]
    return key.casefold()


@dataclass
class DirectoryPlatform:
    """A platform made of data, for `--root DIR` off Windows (a directory standing for the
    system drive) and for tests.

    `registry` maps `HKLM\\...` keys to their values; `commands` is a list of
    `{"match": text, "returncode": n, "stdout": text}`: the first whose `match` occurs in the
    space-joined argv answers. Every `run` is recorded in `calls`. With `source` set, the data
    is re-read from that JSON file on every query, so a fake sysprep can change it mid-run.
    """

    root: Path
    windows: bool = False
    admin: bool = False
    registry: dict[str, dict[str, Any]] = field(default_factory=dict)
    process_names: list[str] = field(default_factory=list)
    commands: list[dict[str, Any]] = field(default_factory=list)
    short_paths: dict[str, str] = field(default_factory=dict)
    interpreter: str | None = None
    drive: str = "C:"
    source: Path | None = None
    calls: list[tuple[str, ...]] = field(default_factory=list)

    @classmethod
    def load(cls, root: Path) -> DirectoryPlatform:
        """The platform described by `<root>/.vmprep-fake-platform.json` (all defaults if absent)."""
        fake = cls(root=root, source=root / FAKE_PLATFORM_FILE)
        fake._reload()
        return fake

    def _reload(self) -> None:
        if self.source is None or not self.source.is_file():
            return
        try:
            data = json.loads(self.source.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise InputError(f"{self.source}: not a fake-platform JSON file: {exc}") from None
        if not isinstance(data, dict):
            raise InputError(f"{self.source}: must hold a JSON object")
        self.windows = bool(data.get("windows", False))
        self.admin = bool(data.get("admin", False))
        self.registry = dict(data.get("registry", {}))
        self.process_names = list(data.get("processes", []))
        self.commands = list(data.get("commands", []))
        self.short_paths = dict(data.get("short_paths", {}))
        self.interpreter = data.get("interpreter")
        self.drive = str(data.get("drive", "C:"))

    def is_windows(self) -> bool:
        self._reload()
        return self.windows

    def is_admin(self) -> bool:
        self._reload()
        return self.admin

    def _values(self, key: str) -> dict[str, Any] | None:
        self._reload()
        wanted = _norm_key(key)
        for name, values in self.registry.items():
            if _norm_key(name) == wanted:
                return values
        return None

    def reg_value(self, key: str, name: str) -> Any:
        values = self._values(key)
        if values is None:
            return None
        for value_name, value in values.items():
            if value_name.casefold() == name.casefold():
                return value
        return None

    def reg_key_exists(self, key: str) -> bool:
        return self._values(key) is not None

    def run(self, argv: Sequence[str], *, timeout: float = 300) -> CommandResult:
        args = tuple(argv)
        self.calls.append(args)
        self._reload()
        line = " ".join(args)
        for answer in self.commands:
            if str(answer.get("match", "")) in line:
                return CommandResult(
                    args,
                    int(answer.get("returncode", 0)),
                    str(answer.get("stdout", "")),
                    str(answer.get("stderr", "")),
                )
        return CommandResult(args, NOT_FOUND, "", f"{args[0]}: program not found")

    def processes(self) -> list[str]:
        self._reload()
        return [name.casefold() for name in self.process_names]

    def short_path(self, path: str) -> str:
        self._reload()
        return self.short_paths.get(path, path)


def default_platform(root: Path | None) -> Platform:
    """The real Windows platform, or the directory platform when `root` stands for the system
    drive."""
    if root is not None:
        return DirectoryPlatform.load(root)
    if sys.platform == "win32":
        from vmprep.sysprep.winhost import WindowsPlatform

        return WindowsPlatform()
    from vmprep.errors import PreflightError

    raise PreflightError(
        "vmprep sysprep runs on the Windows reference VM, and this is not Windows",
        hint="to try it elsewhere, pass --root DIR (a directory standing for the system drive)",
    )


def environ_drive() -> str:
    return os.environ.get("SYSTEMDRIVE", "C:")  # os.environ is case-blind on Windows
