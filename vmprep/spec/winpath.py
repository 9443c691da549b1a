"""The one Windows-path rule: what every path field of a spec (and `render --python`,
`--chain-setupcomplete`) may hold.

Windows rewrites or reinterprets much of what a path can spell, so a path that reads as one
file can name another (Naming Files, Paths, and Namespaces,
https://learn.microsoft.com/en-us/windows/win32/fileio/naming-a-file):

- `CON`, `PRN`, `AUX`, `NUL`, `COM0`-`COM9`, `LPT0`-`LPT9` (and the superscript-digit forms,
  `CONIN$`, `CONOUT$`) name devices in any directory and with any extension: `C:\\x\\NUL.txt`
  is the null device;
- trailing dots and spaces of a component are dropped (`C:\\a.` is `C:\\a`);
- `.` and `..` are resolved before the file system sees the path;
- `name:stream` names an alternate data stream of `name`;
- `\\\\?\\` and `\\\\.\\` (and `\\??\\`) are device paths that skip all of this and reach raw
  disks (`\\\\.\\PhysicalDrive0`);
- MAX_PATH is 260 characters including the terminating NUL, and a component is at most 255.

UNC paths (`\\\\server\\share\\...`) are allowed only where the agent reads a file at first
boot that may live on a share (`msi.path`, `exec.argv[0]`, `wait_for.path`): everything the
image must hold itself (install_dir, the interpreter, the CA bundle) or that the agent writes
(`download.to`, `file.path`) or runs in (`exec.cwd`: cmd.exe cannot use a UNC working
directory) must be on a drive.
"""

from __future__ import annotations

MAX_PATH = 259  # 260 with the terminating NUL
MAX_COMPONENT = 255
_FORBIDDEN = frozenset('<>:"|?*')
_DEVICES = frozenset(
    ["CON", "PRN", "AUX", "NUL", "CONIN$", "CONOUT$"]
    + [f"{p}{d}" for p in ("COM", "LPT") for d in "0123456789\u00b9\u00b2\u00b3"]
)
_DEVICE_PREFIXES = ("\\\\?\\", "\\\\.\\", "\\??\\", "//?/", "//./")
_LETTERS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")

# SetupComplete.cmd: `%` expands even inside quotes, `!` under delayed expansion, `" ^ & | < >`
# end or redirect the command, and cmd.exe reads batch files in the OEM code page (ASCII only).
SETUPCOMPLETE_ALLOWED = "ASCII letters, digits, spaces and . _ - ( ) + ~"
_SAFE_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 ._()+~-")


def windows_path_problem(path: str, *, unc: bool = False, file: bool = True) -> str | None:
    """Why `path` is not a safe absolute Windows path, or None.

    `unc`: a `\\\\server\\share\\...` path is allowed. `file`: the path names a file, so a
    trailing backslash is an error (a directory may end in one)."""
    if path.startswith(_DEVICE_PREFIXES):
        return "is a device path (\\\\?\\ or \\\\.\\), which reaches devices and raw disks"
    bad = control_chars(path)
    if bad:
        return f"contains {bad}, a control character"
    if len(path) > MAX_PATH:
        return f"is {len(path)} characters long; Windows paths have at most {MAX_PATH}"
    if path.startswith("\\\\"):
        if not unc:
            return "must be on a drive, like 'C:\\dir\\file' (not a network path)"
        server, _, rest = path[2:].partition("\\")
        if not server or not rest:
            return "is not a UNC path like '\\\\server\\share\\file'"
        parts = rest.split("\\")
        first = server
    elif len(path) >= 3 and path[0] in _LETTERS and path[1:3] == ":\\":
        parts = path[3:].split("\\")
        first = ""
    else:
        if "/" in path:
            return "is not an absolute Windows path (use backslashes: 'C:\\...')"
        if unc:
            return "is not an absolute Windows path like 'C:\\...' or '\\\\server\\share\\...'"
        return "is not an absolute Windows path: it must be on a drive, like 'C:\\dir\\file'"
    if first and (problem := _component_problem(first)):
        return problem
    if parts == [""]:  # the root of a drive
        return "is the root of a drive, not a file" if file else None
    if parts[-1] == "" and not file:
        parts = parts[:-1]  # a directory may end in a backslash
    for index, part in enumerate(parts):
        if part == "":
            if index == len(parts) - 1:
                return "ends in a backslash, but it must name a file"
            return "has an empty path component (a doubled backslash)"
        problem = _component_problem(part)
        if problem:
            return problem
    return None


def program_problem(program: str) -> str | None:
    """Why `exec.argv[0]` is not a safe program: a path (drive or share) gets the path rule, a
    bare name the file-name rule. A POSIX path (`/bin/sh`, for the agent's POSIX platform, which
    the tests run on) gets the component rules."""
    if program.startswith("/") and not program.startswith("//") and "\\" not in program:
        bad = control_chars(program)
        if bad:
            return f"contains {bad}, a control character"
        for part in program[1:].split("/"):
            if part in ("", ".", ".."):
                return f"has the component {part!r}; name the program by its plain path"
        return None
    if any(c in program for c in "\\/:"):
        return windows_path_problem(program, unc=True, file=True)
    return windows_filename_problem(program)


def windows_filename_problem(name: str) -> str | None:
    """Why `name` cannot be one file name (a path component), or None."""
    if not name:
        return "is empty"
    bad = control_chars(name)
    if bad:
        return f"contains {bad}, a control character"
    return _component_problem(name)


def _component_problem(part: str) -> str | None:
    if part in (".", ".."):
        return f"has the component {part!r}, which Windows resolves before the path is used"
    if "/" in part:
        return "mixes '/' and '\\'; use backslashes only"
    if ":" in part:
        return f"has {part!r}, which names an alternate data stream (':' after the drive)"
    forbidden = sorted(set(part) & _FORBIDDEN)
    if forbidden:
        return f"contains {', '.join(map(repr, forbidden))}, which Windows does not allow in a path"
    if part[-1] in ". ":
        return f"has the component {part!r}: Windows drops trailing dots and spaces"
    if len(part) > MAX_COMPONENT:
        return f"has a component of {len(part)} characters; at most {MAX_COMPONENT}"
    # The device name is what comes before the first dot, trailing spaces ignored: NUL .txt too.
    if part.split(".", 1)[0].rstrip(" ").upper() in _DEVICES:
        return f"has the component {part!r}, a reserved device name (CON, NUL, COM1, ...)"
    return None


def control_chars(text: str) -> str | None:
    """The first C0/C1 control or DEL in `text` as U+XXXX, or None."""
    if text.isprintable():
        return None
    for c in text:
        code = ord(c)
        if code < 0x20 or 0x7F <= code <= 0x9F:
            return f"U+{code:04X}"
    return None


def setupcomplete_path_problem(path: str) -> str | None:
    """Why an absolute path cannot go into SetupComplete.cmd (interpreter, install_dir), or None."""
    problem = windows_path_problem(path, unc=False, file=True)
    if problem:
        return problem
    if len(path) > 240:
        return "is longer than 240 characters"
    for part in path[3:].split("\\"):
        bad = sorted({c for c in part if c not in _SAFE_CHARS})
        if bad:
            shown = ", ".join(repr(c) if c.isprintable() else f"U+{ord(c):04X}" for c in bad)
            return f"contains {shown}; only {SETUPCOMPLETE_ALLOWED} are allowed"
        if part and part != part.strip(" "):
            return f"has the component {part!r} (no leading or trailing spaces)"
    return None
