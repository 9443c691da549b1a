"""Run sysprep.exe and wait for the image state it promises.

`/quit` and then ImageState polling, never `/shutdown`: sysprep can return (and power off)
before generalize has really finished (hashicorp/packer#5385). vmprep shuts down itself once
the state is right. Sysprep runs as a real process on every host (argv, never a shell
string), so the tests' fake sysprep goes through exactly this code.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vmprep.errors import ExternalToolError
from vmprep.sysprep import state
from vmprep.sysprep.platform import Platform

SYSPREP_EXE = "Windows/System32/Sysprep/sysprep.exe"


def default_sysprep_exe(platform: Platform) -> Path:
    path = platform.root / SYSPREP_EXE
    from vmprep.sysprep.winhost import WindowsPlatform, sysnative

    if isinstance(platform, WindowsPlatform):
        path = sysnative(path)
    return path


def unattend_arg(platform: Platform, path: Path) -> str:
    """Sysprep mishandles spaces in `/unattend:`; use the 8.3 short path when there are any."""
    text = str(path)
    if " " not in text:
        return text
    short = platform.short_path(text)
    if " " in short:
        raise ExternalToolError(
            f"the answer file path has spaces and no 8.3 short name: {text}",
            hint="enable 8.3 names on the volume (fsutil 8dot3name) or use a path without spaces",
        )
    return short


def sysprep_argv(exe: Path, unattend: str, sysprep: dict[str, Any]) -> list[str]:
    argv = [str(exe)]
    if sysprep.get("generalize", True):
        argv.append("/generalize")
    argv += ["/oobe" if sysprep.get("oobe", True) else "/audit", "/quit", "/quiet"]
    if sysprep.get("vm_mode") and sysprep.get("generalize", True):
        argv.append("/mode:vm")  # only valid with /generalize
    argv.append(f"/unattend:{unattend}")
    return argv


def shutdown_argv(action: str) -> list[str] | None:
    if action == "shutdown":
        return ["shutdown.exe", "/s", "/t", "0", "/d", "p:4:1"]
    if action == "reboot":
        return ["shutdown.exe", "/r", "/t", "0", "/d", "p:4:1"]
    return None


class SysprepFailed(ExternalToolError):
    """Sysprep exited non-zero, ran too long, or left the wrong image state."""


@dataclass(frozen=True)
class RunResult:
    returncode: int
    final_state: str | None
    seconds: float


@dataclass(frozen=True)
class Progress:
    """Where a Sysprep run is, for people watching a 30-minute wait."""

    seconds: float
    image_state: str | None
    running: bool  # sysprep.exe has not exited yet
    last_log_line: str | None  # the newest line of setupact.log (Panther)


def run_sysprep(
    platform: Platform,
    argv: list[str],
    *,
    expect: str,
    timeout: float,
    poll_interval: float = 2.0,
    settle: float = 120.0,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    progress: Callable[[Progress], None] | None = None,
    last_log_line: Callable[[], str | None] = lambda: None,
) -> RunResult:
    """Run sysprep, then poll ImageState until `expect`; raise SysprepFailed.

    After sysprep exits, the state may lag a little; it gets `settle` seconds (within the
    overall `timeout`) before the run counts as failed. `progress` hears where the run is at
    every poll (the caller decides how often to show it).
    """
    start = clock()

    def tell(running: bool, current: str | None) -> None:
        if progress is not None:
            progress(Progress(clock() - start, current, running, last_log_line()))

    try:
        proc = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
    except OSError as exc:
        raise SysprepFailed(f"could not start sysprep: {exc}") from None
    while True:
        try:
            proc.wait(timeout=max(0.01, min(poll_interval, start + timeout - clock())))
            break
        except subprocess.TimeoutExpired:
            if clock() - start >= timeout:
                proc.kill()
                proc.wait()
                raise SysprepFailed(
                    f"sysprep did not finish within {timeout:g}s and was stopped",
                    hint="sysprep hangs on pending servicing and on cloud agents; see the log "
                    "lines",
                ) from None
            tell(True, state.image_state(platform))
    if proc.returncode != 0:
        raise SysprepFailed(f"sysprep exited with {proc.returncode}")
    deadline = min(start + timeout, clock() + settle)
    current = state.image_state(platform)
    while current != expect:
        left = deadline - clock()
        if left <= 0:
            raise SysprepFailed(
                f"sysprep exited but ImageState is {current or 'unreadable'}, not {expect}",
                hint="the image is not generalized; do not capture it",
            )
        tell(False, current)
        sleep(min(poll_interval, left))
        current = state.image_state(platform)
    return RunResult(proc.returncode, current, clock() - start)


def shut_down(platform: Platform, action: str) -> list[str] | None:
    argv = shutdown_argv(action)
    if argv is None:
        return None
    result = platform.run(argv, timeout=60)
    if result.returncode != 0:
        raise ExternalToolError(
            f"the image is generalized, but {' '.join(argv)} failed ({result.returncode}): "
            f"{result.stderr.strip() or result.stdout.strip()}",
            hint="shut the VM down yourself before capturing it; do not log on to it",
        )
    return argv
