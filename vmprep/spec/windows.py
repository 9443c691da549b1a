"""Windows naming rules the semantic checks (and render) rely on.

Sources: Microsoft's Unattended Windows Setup Reference (ComputerName, TimeZone, locales),
https://learn.microsoft.com/en-us/windows-hardware/customize/desktop/unattend/,
and the cmd.exe parsing rules for SetupComplete.cmd.
"""

from __future__ import annotations

import json
import re
from functools import cache
from pathlib import Path

# ComputerName: "None of { } | ~ [ \ ] ^ ' : ; < = > ? @ ! " # $ % ` ( ) + / . , * & and no
# spaces", at most 15 bytes, not only digits (microsoft-windows-shell-setup-computername).
NETBIOS_FORBIDDEN = set("{}|~[\\]^':;<=>?@!\"#$%`()+/.,*& ")
NETBIOS_MAX_BYTES = 15
# Characters cmd.exe treats specially even inside a quoted path in SetupComplete.cmd.
CMD_SPECIAL = set('%^&|<>!"')
_PATH_FORBIDDEN = set('<>:"|?*')
# Patterns as text: re compiles (and caches) each on first use, not when vmprep starts.
_INPUT_LOCALE = r"(?i)^[0-9a-f]{4}:([0-9a-f]{8}|\{[0-9a-f-]{36}\}\{[0-9a-f-]{36}\})$"
_DRIVE = r"[A-Za-z]:"
_DRIVE_PATH = r"[A-Za-z]:\\"
_UNC_PATH = r"\\\\[^\\/]+\\[^\\/]+"


def computer_name_problem(name: str) -> str | None:
    """Why `name` cannot be a computer name, or None. `*` asks Windows for a random name."""
    if name == "*":
        return None
    if not name:
        return "is empty (write '*' for a random name)"
    bad = sorted({c for c in name if c in NETBIOS_FORBIDDEN or not c.isprintable()})
    if bad:
        return f"contains {_chars(bad)}, which a computer name cannot hold"
    if len(name.encode("utf-8")) > NETBIOS_MAX_BYTES:
        return f"is {len(name.encode('utf-8'))} bytes long; a computer name has at most 15"
    if name.isdigit():
        return "is only digits; a computer name needs a letter or '-'"
    return None


def cmd_special_chars(text: str) -> list[str]:
    return sorted({c for c in text if c in CMD_SPECIAL or ord(c) < 32 or ord(c) == 127})


# What a path inside SetupComplete.cmd may hold (validate's cmd-unsafe-path and render use this
# one rule): `%` expands even inside quotes, `!` under delayed expansion, `" ^ & | < >` end or
# redirect the command, and cmd.exe reads batch files in the OEM code page (so: ASCII only).
SETUPCOMPLETE_ALLOWED = "ASCII letters, digits, spaces and . _ - ( ) + ~"
_SAFE_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 ._()+~-")


def setupcomplete_path_problem(path: str) -> str | None:
    """Why an absolute path cannot go into SetupComplete.cmd (interpreter, install_dir), or None."""
    if len(path) > 240:
        return "is longer than 240 characters"
    parts = path.split("\\")
    if len(parts) < 2 or not re.fullmatch(_DRIVE, parts[0]):
        return "must be on a drive, like 'C:\\dir\\file' (not a network path)"
    for part in parts[1:]:
        if not part:
            return "has an empty path component (a doubled or trailing backslash)"
        bad = sorted({c for c in part if c not in _SAFE_CHARS})
        if bad:
            shown = ", ".join(repr(c) if c.isprintable() else f"U+{ord(c):04X}" for c in bad)
            return f"contains {shown}; only {SETUPCOMPLETE_ALLOWED} are allowed"
        if part in {".", ".."} or part != part.strip(" ") or part.endswith("."):
            return f"has the component {part!r} (no '.', '..', or leading/trailing dots or spaces)"
    return None


def windows_path_problem(path: str) -> str | None:
    """Why `path` is not an absolute Windows path (C:\\... or \\\\server\\share\\...), or None."""
    if "/" in path and not re.match(_DRIVE_PATH, path) and not re.match(_UNC_PATH, path):
        return "is not an absolute Windows path (use backslashes: 'C:\\...')"
    if not (re.match(_DRIVE_PATH, path) or re.match(_UNC_PATH, path)):
        return "is not an absolute Windows path like 'C:\\...' or '\\\\server\\share\\...'"
    rest = path[2:]
    bad = sorted({c for c in rest if c in _PATH_FORBIDDEN or ord(c) < 32})
    if bad:
        return f"contains {_chars(bad)}, which Windows does not allow in a path"
    return None


def locale_problem(tag: str, *, input_locale: bool = False) -> str | None:
    """Why `tag` is not a locale name such as en-US (or, for input, 0409:00000409), or None."""
    parts = tag.split(";") if input_locale else [tag]
    for part in parts:
        if _is_locale(part) or (input_locale and re.match(_INPUT_LOCALE, part)):
            continue
        if "_" in part and _is_locale(part.replace("_", "-")):
            return (
                f"{part!r} uses '_'; Windows locale names use '-', e.g. {part.replace('_', '-')!r}"
            )
        example = "'en-US' or '0409:00000409'" if input_locale else "'en-US'"
        return f"{part!r} is not a locale name like {example}"
    return None


@cache
def _zones() -> dict[str, dict[str, str]]:
    text = Path(__file__).with_name("windows_zones.json").read_text(encoding="utf-8")
    data: dict[str, dict[str, str]] = json.loads(text)
    return data


def windows_time_zones() -> dict[str, str]:
    """Windows time zone ID -> the IANA zone CLDR maps it to."""
    return _zones()["windows"]


def windows_zone_for_iana(name: str) -> str | None:
    return _zones()["iana"].get(name)


def xml_unsafe_chars(text: str) -> list[str]:
    """Characters XML 1.0 cannot represent (control characters, lone surrogates, U+FFFE/F)."""
    if text.isprintable():  # no control character, surrogate or noncharacter: the usual case
        return []
    return sorted({c for c in text if not _xml_char(ord(c))})


def _xml_char(code: int) -> bool:
    """XML 1.0 `Char`: tab, LF, CR, and U+0020 to U+10FFFF without surrogates and U+FFFE/F."""
    return (
        code in (0x9, 0xA, 0xD)
        or 0x20 <= code <= 0xD7FF
        or 0xE000 <= code <= 0xFFFD
        or 0x10000 <= code <= 0x10FFFF
    )


def _is_locale(tag: str) -> bool:
    """`ll`, `ll-CC`, `ll-Scrp`, `ll-Scrp-CC` or `ll-419` (BCP 47 language, script, region)."""
    parts = tag.split("-")
    if not (tag.isascii() and 1 <= len(parts) <= 3 and 2 <= len(parts[0]) <= 3):
        return False
    if not parts[0].isalpha():
        return False
    rest = parts[1:]
    if rest and len(rest[0]) == 4 and rest[0].isalpha():
        rest = rest[1:]  # a script such as Latn
    if not rest:
        return True
    region = rest[0]
    return len(rest) == 1 and (
        (len(region) == 2 and region.isalpha()) or (len(region) == 3 and region.isdigit())
    )


def _chars(chars: list[str]) -> str:
    shown = [repr(c) if c.isprintable() and c != " " else f"U+{ord(c):04X}" for c in chars]
    if " " in chars:
        shown = [s if s != "U+0020" else "a space" for s in shown]
    return ", ".join(shown)
