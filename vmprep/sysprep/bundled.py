"""The `python` preflight check for a bundled runtime (`agent.runtime.embedded`)."""

from __future__ import annotations

from pathlib import Path

from vmprep.spec.embedded import EmbeddedZipError, interpreter_path, read_zip, zip_path
from vmprep.sysprep.preflight import CheckContext, CheckResult, failed, passed


def bundled_runtime(ctx: CheckContext) -> CheckResult:
    """No interpreter is needed on the VM: render unpacks the pinned zip under install_dir.
    Its files are checked here (validate reads them too, but only when the zip is there), and
    the OS part it relies on: the Universal CRT (ucrtbase.dll), which Windows 10 and Server
    2016 and later include (https://learn.microsoft.com/en-us/cpp/windows/universal-crt-
    deployment); older Windows needs the update KB2999226 (docs/runtime.md)."""
    pinned = ctx.agent["runtime"]["embedded"]
    path = zip_path(pinned["zip"], ctx.spec_dir or Path.cwd())
    try:
        found = read_zip(path, pinned["sha256"])
    except EmbeddedZipError as exc:
        return failed(
            "python",
            f"bundled runtime (agent.runtime.embedded): {exc}",
            "copy the zip the spec pins next to it (the path is relative to the spec file)",
        )
    if not (ctx.platform.root / "Windows/System32/ucrtbase.dll").is_file():
        return failed(
            "python",
            f"the bundled {found.describe()} needs the Universal CRT, and "
            f"{ctx.platform.drive}\\Windows\\System32\\ucrtbase.dll is missing",
            "Windows 10 and Server 2016 and later include it; older Windows needs KB2999226",
        )
    python = interpreter_path(ctx.agent["install_dir"])
    return passed(
        "python",
        f"bundled runtime {found.describe()} ({len(found.entries)} files) goes to {python}; "
        "no interpreter needed on the VM",
    )
