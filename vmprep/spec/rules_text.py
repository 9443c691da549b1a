"""Control characters in every string that reaches Windows (#13).

A control character in a name, path, URL or value is at best a typo and at worst a way to make
a log line, a registry value or a command line mean something other than what a reviewer read.
Only the fields that hold text meant to span lines take tab, LF and CR: `powershell`, `cmd`,
`file.content` and `description`. Scripts get two more rules: no Ctrl-Z (cmd.exe reads U+001A
as the end of a batch file) and no line longer than 8,191 characters, the most cmd.exe reads
(https://learn.microsoft.com/en-us/troubleshoot/windows-client/shell-experience/command-line-string-limitation).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from vmprep.spec.checks import Doc, Finding, check, dotted
from vmprep.spec.load import JsonPath
from vmprep.spec.winrules import xml_unsafe_chars

CMD_MAX_LINE = 8191
_MULTILINE = frozenset(("powershell", "cmd", "content", "description"))
_LINE_CHARS = frozenset("\t\n\r")


def control_characters(text: str, *, multiline: bool = False) -> list[str]:
    """The C0/C1 controls and DEL in `text` (tab, LF and CR allowed when `multiline`)."""
    if text.isprintable():
        return []
    return sorted(
        {
            c
            for c in text
            if (ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F) and not (multiline and c in _LINE_CHARS)
        }
    )


@check("control-character", "spec", "roleConfig")
def control_character(doc: Doc) -> Iterator[Finding]:
    strings = _strings(doc.data, ()) if doc.unprintable else []
    for path, text, is_key in strings:
        multiline = not is_key and bool(path) and path[-1] in _MULTILINE
        bad = control_characters(text, multiline=multiline)
        if path[:1] == ("setup",):  # what XML cannot hold is the xml-characters check's
            xml_bad = set(xml_unsafe_chars(text))
            bad = [c for c in bad if c not in xml_bad]
        if bad:
            codes = ", ".join(f"U+{ord(c):04X}" for c in bad[:5])
            what = "the key" if is_key else dotted(path) or "the document"
            yield Finding(
                path, f"{what} contains the control character(s) {codes}", hint=_hint(path)
            )
    for path, step in doc.steps():
        for kind in ("cmd", "powershell"):
            script = step.get(kind)
            if not isinstance(script, str):
                continue
            where = (*path, kind)
            if "\x1a" in script:
                msg = f"the {kind} script contains Ctrl-Z (U+001A), which cmd.exe reads as its end"
                yield Finding(where, msg)
            if kind == "cmd":
                longest = max(len(line) for line in script.splitlines() or [""])
                if longest > CMD_MAX_LINE:
                    msg = (
                        f"a line of the cmd script is {longest:,} characters long; cmd.exe "
                        f"reads at most {CMD_MAX_LINE:,}"
                    )
                    yield Finding(where, msg, hint="split it, or use a powershell or file step")


def _hint(path: JsonPath) -> str:
    if path and path[-1] in _MULTILINE:
        return "only tab, line feed and carriage return are allowed here"
    return 'remove it (in YAML, a double-quoted "\\t" or "\\n" is one)'


def _strings(value: Any, path: JsonPath) -> list[tuple[JsonPath, str, bool]]:
    """The strings and keys that are not printable (so may hold a control character): one
    walk without generators, and a path built only for what it finds (it runs on every spec)."""
    found: list[tuple[JsonPath, str, bool]] = []
    _collect(value, path, found)
    return found


def _collect(value: Any, path: JsonPath, found: list[tuple[JsonPath, str, bool]]) -> None:
    if isinstance(value, dict):
        for key, item in value.items():
            if not key.isprintable():
                found.append(((*path, key), key, True))
            if isinstance(item, str):
                if not item.isprintable():
                    found.append(((*path, key), item, False))
            elif isinstance(item, (dict, list)):
                _collect(item, (*path, key), found)
    elif isinstance(value, list):
        for i, item in enumerate(value):
            if isinstance(item, str):
                if not item.isprintable():
                    found.append(((*path, i), item, False))
            elif isinstance(item, (dict, list)):
                _collect(item, (*path, i), found)
    elif isinstance(value, str) and not value.isprintable():
        found.append((path, value, False))
