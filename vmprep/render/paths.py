"""Where render puts a Windows path in the overlay.

Whether a path is safe inside SetupComplete.cmd is decided by
`vmprep.spec.winrules.setupcomplete_path_problem` (validate's `cmd-unsafe-path` applies the same
rule): render checks every path with it before it gets here.
"""

from __future__ import annotations


def overlay_path(windows_path: str) -> str:
    """`C:\\ProgramData\\vmprep` -> `ProgramData/vmprep` (the overlay is the system drive)."""
    return "/".join(windows_path.split("\\")[1:])


def on_system_drive(windows_path: str) -> bool:
    return windows_path[:2].upper() == "C:"
