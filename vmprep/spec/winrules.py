"""Windows naming rules the semantic checks (and render) rely on: computer names, locales, time
zones, characters cmd.exe or XML cannot carry, identifiers.

Sources: Microsoft's Unattended Windows Setup Reference (ComputerName, TimeZone, locales),
https://learn.microsoft.com/en-us/windows-hardware/customize/desktop/unattend/,
and the cmd.exe parsing rules for SetupComplete.cmd.
"""

from __future__ import annotations

import json
import re
from functools import cache
from pathlib import Path

from vmprep.protocol.names import computer_name_problem

# Re-exported: the one path rule lives in winpath.
from vmprep.spec.winpath import (
    SETUPCOMPLETE_ALLOWED,
    setupcomplete_path_problem,
    windows_filename_problem,
    windows_path_problem,
)

__all__ = [
    "CMD_SPECIAL",
    "SETUPCOMPLETE_ALLOWED",
    "cmd_special_chars",
    "computer_name_problem",
    "identifier_problem",
    "locale_problem",
    "setupcomplete_path_problem",
    "windows_filename_problem",
    "windows_path_problem",
    "windows_time_zones",
    "windows_zone_for_iana",
    "xml_unsafe_chars",
]

# Characters cmd.exe treats specially even inside a quoted path in SetupComplete.cmd.
CMD_SPECIAL = set('%^&|<>!"')
# Patterns as text: re compiles (and caches) each on first use, not when vmprep starts.
_INPUT_LOCALE = r"(?i)^[0-9a-f]{4}:([0-9a-f]{8}|\{[0-9a-f-]{36}\}\{[0-9a-f-]{36}\})$"


def cmd_special_chars(text: str) -> list[str]:
    return sorted({c for c in text if c in CMD_SPECIAL or ord(c) < 32 or ord(c) == 127})


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


def identifier_problem(name: str) -> str | None:
    """Why an account or group name could mislead a reviewer, or None: an invisible character
    (zero-width, bidirectional control, a space other than U+0020) or letters from more than
    one script (a Cyrillic `а` among Latin letters: UTS #39 mixed-script confusables,
    https://www.unicode.org/reports/tr39/#Mixed_Script_Detection)."""
    if name.isascii():
        return None
    import unicodedata

    scripts = set()
    for c in name:
        category = unicodedata.category(c)
        if category in ("Cf", "Cc", "Zl", "Zp") or (category == "Zs" and c != " "):
            return f"contains the invisible character U+{ord(c):04X}"
        if category.startswith("L"):
            scripts.add(unicodedata.name(c, "UNKNOWN").split()[0])
    scripts.discard("UNKNOWN")
    if len(scripts) > 1:
        return f"mixes letters of {len(scripts)} scripts ({', '.join(sorted(scripts))})"
    return None
