"""Windows paths that render writes into SetupComplete.cmd or maps onto the overlay.

Only paths that are safe inside a double-quoted cmd.exe argument pass: an absolute
`X:\\dir\\file` path made of ASCII letters, digits, spaces and `. _ - ( ) + ~`. That rules out
`%` (expanded even inside quotes), `!` (delayed expansion), `"`, `^ & | < >` and every
non-ASCII character (cmd.exe reads batch files in the OEM code page). DESIGN.md principle 1.
"""

from __future__ import annotations

import re

_COMPONENT = re.compile(r"[A-Za-z0-9 ._()+~-]+")
_DRIVE = re.compile(r"[A-Za-z]:")
ALLOWED = "ASCII letters, digits, spaces and . _ - ( ) + ~"


def path_problem(value: str) -> str | None:
    """Why `value` is not a safe absolute Windows path, or None when it is."""
    if len(value) > 240:
        return "is longer than 240 characters"
    parts = value.split("\\")
    if len(parts) < 2 or not _DRIVE.fullmatch(parts[0]):
        return "must be an absolute Windows path such as C:\\dir\\file"
    for part in parts[1:]:
        if not part:
            return "has an empty path component (doubled or trailing backslash)"
        if not _COMPONENT.fullmatch(part):
            bad = sorted({c for c in part if not _COMPONENT.fullmatch(c)})
            shown = " ".join(repr(c) for c in bad)
            return f"contains {shown}; only {ALLOWED} are allowed"
        if part in {".", ".."} or part != part.rstrip(" .") or part != part.lstrip(" "):
            return f"has the component {part!r} (no '.', '..', or leading/trailing dots or spaces)"
    return None


def overlay_path(windows_path: str) -> str:
    """`C:\\ProgramData\\vmprep` -> `ProgramData/vmprep` (the overlay is the system drive)."""
    return "/".join(windows_path.split("\\")[1:])


def on_system_drive(windows_path: str) -> bool:
    return windows_path[:2].upper() == "C:"
