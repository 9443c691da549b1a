"""A problem found in an input file, with its position (STYLE.md: problems carry coordinates)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from enum import Enum
from typing import Any

# Bidirectional overrides and isolates reorder what a terminal shows (Trojan Source,
# https://trojansource.codes/); they are format characters (Cf), escaped with the rest.
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
_UNSAFE_CATEGORIES = frozenset(("Cc", "Cf", "Cs", "Zl", "Zp"))


def printable(text: str) -> str:
    """`text` with every control character (C0, DEL, C1: ESC, CR, LF, BS, NUL ...), format
    character (bidirectional overrides U+202A-U+202E and isolates U+2066-U+2069, zero-width
    characters), line/paragraph separator and lone surrogate written as an escape (`\\x1b`,
    `\\u202e`), so that nothing from a spec can move the cursor, recolour the terminal,
    reorder a line or start a new one (a GitHub `::` workflow command, a forged problem)."""
    if text.isprintable():  # the usual case: no unicodedata import, no copy
        return text
    import unicodedata

    out = []
    for c in text:
        if c == " " or unicodedata.category(c) not in _UNSAFE_CATEGORIES:
            out.append(c)
        elif c in _NAMED:
            out.append(_NAMED[c])
        else:
            code = ord(c)
            out.append(f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}")
    return "".join(out)


class Severity(str, Enum):
    ERROR = "error"
    WARNING = "warning"


class Problem:
    """Immutable; ordered and compared by position, code, message and severity (not by path or
    hint). Written out by hand rather than as a dataclass: `vmprep validate` runs on every
    commit, and generating the dataclass methods at import was a tenth of its own start-up."""

    __slots__ = ("code", "column", "file", "hint", "line", "message", "path", "severity")

    file: str
    line: int  # 1-based; 0 when the problem cannot be placed
    column: int
    code: str  # "yaml", "schema", or a check id such as "computer-name"
    message: str
    severity: Severity
    path: tuple[str | int, ...]  # JSON path in the document
    hint: str | None

    def __init__(
        self,
        file: str,
        line: int,
        column: int,
        code: str,
        message: str,
        severity: Severity = Severity.ERROR,
        path: tuple[str | int, ...] = (),
        hint: str | None = None,
    ) -> None:
        init = object.__setattr__
        init(self, "file", file)
        init(self, "line", line)
        init(self, "column", column)
        init(self, "code", code)
        init(self, "message", message)
        init(self, "severity", severity)
        init(self, "path", path)
        init(self, "hint", hint)

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"Problem is immutable: cannot set {name!r}")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"Problem is immutable: cannot delete {name!r}")

    def _key(self) -> tuple[str, int, int, str, str, Severity]:
        return (self.file, self.line, self.column, self.code, self.message, self.severity)

    def __eq__(self, other: object) -> bool:
        return self._key() == other._key() if isinstance(other, Problem) else NotImplemented

    def __lt__(self, other: Problem) -> bool:
        return self._key() < other._key()

    def __le__(self, other: Problem) -> bool:
        return self._key() <= other._key()

    def __gt__(self, other: Problem) -> bool:
        return self._key() > other._key()

    def __ge__(self, other: Problem) -> bool:
        return self._key() >= other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __repr__(self) -> str:
        return (
            f"Problem(file={self.file!r}, line={self.line!r}, column={self.column!r}, "
            f"code={self.code!r}, message={self.message!r}, severity={self.severity!r}, "
            f"path={self.path!r}, hint={self.hint!r})"
        )

    @property
    def is_error(self) -> bool:
        return self.severity is Severity.ERROR

    @property
    def json_path(self) -> str:
        """`$.agent.steps[2].download.url` style."""
        return format_path(self.path, root="$")

    def to_json(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "line": self.line,
            "column": self.column,
            "severity": self.severity.value,
            "code": self.code,
            "message": self.message,
            "path": self.json_path,
            "hint": self.hint,
        }

    def __str__(self) -> str:
        return (
            f"{printable(self.file)}:{self.line}:{self.column}: {self.severity.value}: "
            f"{printable(self.message)} ({self.code})"
        )


def ref_name(kind: str, name: str) -> str:
    """A secret reference's name as messages may show it: as written when it looks like a
    name, else `<redacted, N characters>`. People paste the secret itself where its name
    belongs (`{env: "S3cret!x"}`), and a message must not print it to a CI log."""
    import re

    if kind == "file":
        ok = re.fullmatch(r"[A-Za-z0-9._/\\~ -]{1,200}", name) is not None
    else:
        ok = re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,63}", name) is not None
        # UPPER_SNAKE, lower-case or kebab names; a mix of lower, upper and digits is a password.
        mixed = any(c.islower() for c in name) and any(c.isupper() for c in name)
        ok = ok and not (mixed and any(c.isdigit() for c in name))
    return name if ok else f"<redacted, {len(name)} characters>"


def format_path(
    path: Sequence[str | int], root: str = "", key: Callable[[str], str] | None = None
) -> str:
    """The one way a JSON path is written: `agent.steps[2].download.url`, or with `root="$"`
    `$.agent.steps[2].download.url` (the JSON report). `key` rewrites each key first (messages
    cut long ones). Every formatter of a path outside the agent uses this; the agent (standard
    library only, vmprep/agent/stepcheck.py) builds its `steps[3].name` strings as it walks."""
    out = root
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            text = key(part) if key is not None else part
            out += f".{text}" if out else text
    return out
