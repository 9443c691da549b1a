"""The overlay's layout and the install paths: where every file vmprep puts on (or looks for
on) the system drive lives, for render, `render --explain` and sysprep's checks.

The overlay is the system drive (`C:`): its paths are relative and use `/`
(`Windows/Panther/unattend.xml`); `windows_path` gives the path Windows sees. Whether a path
is safe inside SetupComplete.cmd is decided by `vmprep.spec.winrules.setupcomplete_path_problem`
(validate's `cmd-unsafe-path` applies the same rule): render checks every path with it before
it gets here.
"""

from __future__ import annotations

# The answer file Windows reads in the oobeSystem pass after Sysprep (the implicit search
# order: https://learn.microsoft.com/en-us/windows-hardware/manufacture/desktop/windows-setup-automation-overview).
UNATTEND = "Windows/Panther/unattend.xml"
# Windows runs it as SYSTEM after Setup, before the first logon:
# https://learn.microsoft.com/en-us/windows-hardware/manufacture/desktop/add-a-custom-script-to-windows-setup
SETUPCOMPLETE = "Windows/Setup/Scripts/SetupComplete.cmd"
# Where `vmprep sysprep` moves a SetupComplete.cmd it finds on the reference VM; ours calls it
# first (docs/internals.md).
CHAINED_SETUPCOMPLETE = "Windows/Setup/Scripts/SetupComplete.vmprep-chained.cmd"
AZURE_SETUPCOMPLETE2 = "Windows/OEM/SetupComplete2.cmd"  # docs/platforms/azure.md
AZURE_CHAINED = "Windows/OEM/SetupComplete2.vmprep-chained.cmd"  # an existing one, chained
# Answer files Windows would find, in its implicit search order, relative to the drive
# (https://learn.microsoft.com/en-us/windows-hardware/manufacture/desktop/windows-setup-automation-overview).
ANSWER_FILE_SEARCH = (
    "Windows/Panther/unattend*.xml",
    "Windows/Panther/Unattend/unattend.xml",
    "Windows/Panther/Unattend/autounattend.xml",
    "Windows/System32/Sysprep/unattend.xml",
    "unattend.xml",
    "autounattend.xml",
)
# Where Windows Setup caches the answer file (`unattend.xml`, and the copies some tools leave
# beside it) and where `vmprep sysprep` installs it; the agent removes them after first boot
# (agent.json `answer_files`); `*` matches in the last component.
CACHED_ANSWER_FILES = (
    "C:\\Windows\\Panther\\unattend*.xml",
    "C:\\Windows\\System32\\Sysprep\\unattend.xml",
)
AGENT_PYZ = "agent.pyz"  # in agent.install_dir, beside agent.json
AGENT_JSON = "agent.json"


def windows_path(overlay: str) -> str:
    """`Windows/Panther/unattend.xml` -> `C:\\Windows\\Panther\\unattend.xml`."""
    return "C:\\" + overlay.replace("/", "\\")


def overlay_path(windows_path: str) -> str:
    """`C:\\ProgramData\\vmprep` -> `ProgramData/vmprep` (the overlay is the system drive)."""
    return "/".join(windows_path.split("\\")[1:])


def on_system_drive(windows_path: str) -> bool:
    return windows_path[:2].upper() == "C:"
