"""YAML loading that never surprises: positions for every path, and a clean Problem for bad input.

Parsing uses libyaml (PyYAML's C parser) when it is installed; the node tree is then turned into
plain data by our own walk, which records the line and column of every key and value, refuses
what a spec never needs (custom tags, duplicate keys, alias bombs, deep nesting, huge or
non-finite numbers), and remembers the YAML 1.1 scalars that were read as something other than
the text written (`no` -> false, `22:22` -> 1342) so that schema errors can say "quote it".
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from vmprep.problems import Problem
from vmprep.spec.yamltree import (
    MAX_DEPTH,
    MAX_NODES,
    JsonPath,
    Marks,
    Refused,
    Surprise,
    Walker,
    node_pos,
)

__all__ = [
    "MAX_BYTES",
    "MAX_NODES",
    "JsonPath",
    "Loaded",
    "Marks",
    "Surprise",
    "load_bytes",
    "load_file",
    "load_text",
]

MAX_BYTES = 1024 * 1024  # enforced before parsing
_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_UTF16_32_BOMS = (b"\x00\x00\xfe\xff", b"\xff\xfe\x00\x00", b"\xff\xfe", b"\xfe\xff")


class Loaded:
    """A parsed document: the data, where each path sits in the file, and load problems.

    `marks` maps a path to its key (for a mapping entry) or its first character;
    `value_marks` maps it to the first character of its value.
    """

    __slots__ = ("data", "file", "marks", "problems", "surprises", "unprintable", "value_marks")

    def __init__(
        self,
        file: str,
        data: Any,
        marks: Marks,
        problems: tuple[Problem, ...],
        value_marks: Marks | None = None,
        surprises: dict[JsonPath, Surprise] | None = None,
        unprintable: bool = True,
    ) -> None:
        self.file = file
        self.data = data
        self.marks = marks
        self.problems = problems
        self.value_marks = value_marks or {}
        self.surprises = surprises or {}
        self.unprintable = unprintable  # False: the loader saw only printable strings and keys

    def position(self, path: JsonPath) -> tuple[int, int]:
        """The line and column of `path` (its key, for a mapping entry), or of its parent."""
        return _nearest(self.marks, path)

    def value_position(self, path: JsonPath) -> tuple[int, int]:
        """The line and column of the value at `path`, or of its nearest placed parent."""
        return _nearest(self.value_marks or self.marks, path)


def _nearest(marks: Marks, path: JsonPath) -> tuple[int, int]:
    while path:
        if path in marks:
            return marks[path]
        path = path[:-1]
    return marks.get((), (1, 1))


def load_file(path: Path) -> Loaded:
    file = str(path)
    try:
        with path.open("rb") as f:
            raw = f.read(MAX_BYTES + 1)  # never read more than the cap allows
    except OSError as exc:
        return _failed(file, 1, 1, "file", f"cannot read the file: {exc.strerror or exc}")
    return load_bytes(raw, file)


def load_bytes(raw: bytes, file: str) -> Loaded:
    if len(raw) > MAX_BYTES:
        msg = f"the file is larger than {MAX_BYTES} bytes, the limit for a spec"
        return _failed(file, 1, 1, "too-large", msg)
    if raw.startswith(_UTF16_32_BOMS):
        return _failed(file, 1, 1, "encoding", "the file is UTF-16 or UTF-32", "save it as UTF-8")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line, col = _line_col(raw[: exc.start].decode("utf-8", "replace"), None)
        msg = f"the file is not UTF-8: byte 0x{raw[exc.start]:02x} cannot be decoded"
        return _failed(file, line, col, "encoding", msg, "save the file as UTF-8")
    return load_text(text.removeprefix("\ufeff"), file)  # a leading UTF-8 BOM is allowed


def load_text(text: str, file: str) -> Loaded:
    for bad, what in (("\x00", "a NUL byte"), ("\ufeff", "a byte-order mark")):
        at = text.find(bad)
        if at >= 0:
            line, col = _line_col(text, at)
            return _failed(file, line, col, "yaml", f"the file contains {what}")
    try:
        node = yaml.compose(text, Loader=_LOADER)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        message, hint = _yaml_message(exc, text, mark)
        return _failed(file, line, col, "yaml", f"invalid YAML: {message}", hint)
    except yaml.YAMLError as exc:  # ReaderError: a character YAML does not allow
        position = getattr(exc, "position", None)
        line, col = _line_col(text, position) if isinstance(position, int) else (1, 1)
        reason = getattr(exc, "reason", None) or str(exc)
        return _failed(file, line, col, "yaml", f"invalid YAML: {reason}")
    except RecursionError:  # only the pure-Python parser recurses without a limit
        return _failed(file, 1, 1, "yaml", f"the document is nested deeper than {MAX_DEPTH}")
    if node is None or (isinstance(node, yaml.ScalarNode) and node.tag == "tag:yaml.org,2002:null"):
        return _failed(file, 1, 1, "yaml", "the file is empty", "start with `version: 1`")
    walker = Walker()
    try:
        data = walker.value(node, (), 1)
    except Refused as exc:
        line, col = node_pos(exc.node) if exc.node is not None else (1, 1)
        return _failed(file, line, col, exc.code, str(exc), exc.hint)
    problems: list[Problem] = [
        Problem(file, *pos, "duplicate-key", msg, path=path, hint="remove one of them")
        for path, pos, msg in walker.duplicates
    ]
    problems += [
        Problem(file, *node_pos(exc.node), exc.code, str(exc), path=path, hint=exc.hint)
        for path, exc in walker.soft
        if exc.node is not None
    ]
    if not isinstance(data, dict):
        got = _kind(data)
        problems.append(Problem(file, 1, 1, "yaml", f"the top level must be a mapping, not {got}"))
    return Loaded(
        file,
        data,
        walker.marks,
        tuple(problems),
        walker.value_marks,
        walker.surprises,
        walker.unprintable or bool(walker.soft),
    )


def _line_col(text: str, index: int | None) -> tuple[int, int]:
    before = text if index is None else text[:index]
    return before.count("\n") + 1, len(before) - (before.rfind("\n") + 1) + 1


def _failed(
    file: str, line: int, col: int, code: str, message: str, hint: str | None = None
) -> Loaded:
    return Loaded(file, None, {}, (Problem(file, line, col, code, message, hint=hint),))


def _yaml_message(exc: yaml.MarkedYAMLError, text: str, mark: Any) -> tuple[str, str | None]:
    parts = [exc.context, exc.problem]
    message = "; ".join(p for p in parts if p) or str(exc)
    if "constructor for the tag" in message:
        message = "a tag that is not allowed in a spec"
    index = getattr(mark, "index", None)
    if isinstance(index, int) and text[index : index + 1] == "\t":
        # libyaml says "found character that cannot start any token" and does not say which.
        return "a tab character here; YAML indents with spaces only", "replace the tab with spaces"
    return message, None


def _kind(value: Any) -> str:
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return "a string"
    if value is None:
        return "null"
    return "a boolean" if isinstance(value, bool) else "a number"
