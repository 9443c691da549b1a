"""Windows system programs by absolute path, from the Windows directory the OS reports.

The agent never finds `powershell.exe`, `msiexec.exe`, `schtasks.exe`... through `PATH`: a
step that breaks the machine `Path` (or a planted program in the interpreter's directory or the
current directory, which CreateProcess searches before the system directories) must not change
which program the agent runs (#19).
https://learn.microsoft.com/en-us/windows/win32/api/processthreadsapi/nf-processthreadsapi-createprocessw
(lpCommandLine: the search order for a program name without a path)
https://learn.microsoft.com/en-us/windows/win32/api/sysinfoapi/nf-sysinfoapi-getsystemwindowsdirectoryw
(the shared Windows directory; GetWindowsDirectory is per user under Terminal Services)
A 32-bit agent on 64-bit Windows reaches the 64-bit programs through `Sysnative`: `System32`
is redirected to `SysWOW64` for it.
https://learn.microsoft.com/en-us/windows/win32/winprog64/file-system-redirector
https://learn.microsoft.com/en-us/windows/win32/winprog64/wow64-implementation-details
(PROCESSOR_ARCHITEW6432 is set only in a WOW64 process)
"""

from __future__ import annotations

import ntpath
import os

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing is not imported at run time: it costs start-up time
    from collections.abc import Mapping

# Where each program lives under the system directory.
SYSTEM_PROGRAMS = {
    "powershell.exe": r"WindowsPowerShell\v1.0\powershell.exe",
    "cmd.exe": "cmd.exe",
    "msiexec.exe": "msiexec.exe",
    "schtasks.exe": "schtasks.exe",
    "shutdown.exe": "shutdown.exe",
    "sc.exe": "sc.exe",
    "taskkill.exe": "taskkill.exe",
    "reg.exe": "reg.exe",
}
DEFAULT_WINDOWS_DIR = "C:\\Windows"  # off Windows (tests building argvs), or if the call fails

_windows_dir: str | None = None


def windows_dir() -> str:
    """GetSystemWindowsDirectoryW, asked once; `C:\\Windows` where there is no such call."""
    global _windows_dir
    if _windows_dir is None:
        _windows_dir = _ask_windows_dir() if os.name == "nt" else DEFAULT_WINDOWS_DIR
    return _windows_dir


def _ask_windows_dir() -> str:  # pragma: no cover - Windows only (the bench runs it)
    import ctypes

    buf = ctypes.create_unicode_buffer(260)
    size = ctypes.windll.kernel32.GetSystemWindowsDirectoryW(buf, 260)  # type: ignore[attr-defined]
    if size == 0 or size > 260:
        return os.environ.get("SYSTEMROOT") or DEFAULT_WINDOWS_DIR
    return buf.value


def system_dir(root: str | None = None, environ: Mapping[str, str] | None = None) -> str:
    """`<Windows>\\System32`, or `<Windows>\\Sysnative` in a 32-bit process on 64-bit Windows."""
    env = os.environ if environ is None else environ
    wow64 = bool(env.get("PROCESSOR_ARCHITEW6432"))
    return ntpath.join(root or windows_dir(), "Sysnative" if wow64 else "System32")


def system_program(name: str, *, system: str | None = None) -> str | None:
    """The absolute path of a known system program (`sc.exe`, `SC.EXE`, `sc`), or None."""
    key = name.lower()
    if not key.endswith(".exe"):
        key += ".exe"
    rel = SYSTEM_PROGRAMS.get(key)
    return None if rel is None else ntpath.join(system or system_dir(), rel)


def resolve_argv(argv: list[str], *, system: str | None = None) -> list[str]:
    """argv with a bare system program name in argv[0] replaced by its absolute path."""
    if not argv or any(sep in argv[0] for sep in "\\/:"):
        return argv
    path = system_program(argv[0], system=system)
    return argv if path is None else [path, *argv[1:]]
