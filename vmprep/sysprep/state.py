"""Windows Setup's image state: the registry value, else `%WINDIR%\\Setup\\State\\State.ini`.

https://learn.microsoft.com/en-us/windows-hardware/manufacture/desktop/windows-setup-states
"""

from __future__ import annotations

from pathlib import Path

from vmprep.sysprep.platform import Platform

STATE_KEY = "HKLM\\SOFTWARE\\Microsoft\\Windows\\CurrentVersion\\Setup\\State"
STATE_INI = "Windows/Setup/State/State.ini"

COMPLETE = "IMAGE_STATE_COMPLETE"
UNDEPLOYABLE = "IMAGE_STATE_UNDEPLOYABLE"
GENERALIZE_RESEAL_TO_OOBE = "IMAGE_STATE_GENERALIZE_RESEAL_TO_OOBE"


def target_state(*, generalize: bool, oobe: bool) -> str:
    """The state sysprep leaves behind when it did what was asked."""
    first = "GENERALIZE" if generalize else "SPECIALIZE"
    return f"IMAGE_STATE_{first}_RESEAL_TO_{'OOBE' if oobe else 'AUDIT'}"


def decode_text(data: bytes) -> str:
    """Setup's files are ANSI or UTF-16 with a BOM, depending on the writer."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return data.decode("utf-16", errors="replace")
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    return data.decode("utf-8", errors="replace")


def parse_state_ini(text: str) -> str | None:
    """`ImageState` from the `[State]` section of State.ini."""
    section = ""
    for raw in text.splitlines():
        line = raw.strip()
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1].strip().casefold()
        elif section == "state" and "=" in line:
            name, _, value = line.partition("=")
            if name.strip().casefold() == "imagestate":
                return value.strip() or None
    return None


def read_state_ini(root: Path) -> str | None:
    try:
        data = (root / STATE_INI).read_bytes()
    except OSError:
        return None
    return parse_state_ini(decode_text(data))


def image_state(platform: Platform) -> str | None:
    """The registry value (what Setup itself reads), else State.ini, else None."""
    value = platform.reg_value(STATE_KEY, "ImageState")
    if isinstance(value, str) and value:
        return value
    return read_state_ini(platform.root)
