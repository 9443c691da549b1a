"""YAML loading that never surprises: positions for every path, and a clean Problem for bad input.

Parsing uses libyaml (PyYAML's C parser) when it is installed; the node tree is then turned into
plain data by our own walk, which records the line and column of every key and value, refuses
what a spec never needs (custom tags, duplicate keys, alias bombs, deep nesting, huge or
non-finite numbers), and remembers the YAML 1.1 scalars that were read as something other than
the text written (`no` -> false, `22:22` -> 1342) so that schema errors can say "quote it".
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from yaml.constructor import SafeConstructor

from vmprep.problems import Problem

MAX_BYTES = 1024 * 1024  # enforced before parsing
MAX_DEPTH = 64  # as PROTOCOL.md's limit for config documents
MAX_NODES = 200_000  # after alias expansion: a billion-laughs file stops here

JsonPath = tuple[str | int, ...]
Marks = dict[JsonPath, tuple[int, int]]

_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_TAG = "tag:yaml.org,2002:"
_SCALAR_TAGS = {f"{_TAG}{t}" for t in ("str", "int", "float", "bool", "null", "value")}
_TYPE_WORDS = {"bool": "a boolean", "int": "a number", "float": "a number", "null": "null"}
_UTF16_32_BOMS = (b"\x00\x00\xfe\xff", b"\xff\xfe\x00\x00", b"\xff\xfe", b"\xfe\xff")
_CONSTRUCT = SafeConstructor()


@dataclass(frozen=True)
class Surprise:
    """A plain scalar that YAML 1.1 read as something other than a string."""

    text: str  # as written
    word: str  # "a boolean", "a number", "null"

    def explain(self, value: Any) -> str:
        if self.word == "null":
            shown = "an empty value" if self.text in ("", "~") else f"`{self.text}`"
            return f"{shown} is read as null, not as a string"
        return f"`{self.text}` is read as {self.word} ({_show(value)}), not as a string"


@dataclass(frozen=True)
class Loaded:
    """A parsed document: the data, where each path sits in the file, and load problems."""

    file: str
    data: Any
    marks: Marks  # a path -> its key (mapping entries) or its first character
    problems: tuple[Problem, ...]
    value_marks: Marks = field(default_factory=dict)  # a path -> the first character of its value
    surprises: dict[JsonPath, Surprise] = field(default_factory=dict)

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


class _Refused(Exception):
    def __init__(
        self, node: yaml.Node | None, message: str, hint: str | None = None, code: str = "yaml"
    ) -> None:
        super().__init__(message)
        self.node = node
        self.hint = hint
        self.code = code


def load_file(path: Path) -> Loaded:
    file = str(path)
    try:
        with path.open("rb") as f:
            raw = f.read(MAX_BYTES + 1)  # never read more than the cap allows
    except OSError as exc:
        return _failed(file, 0, 0, "file", f"cannot read the file: {exc.strerror or exc}")
    return load_bytes(raw, file)


def load_bytes(raw: bytes, file: str) -> Loaded:
    if len(raw) > MAX_BYTES:
        msg = f"the file is larger than {MAX_BYTES} bytes, the limit for a spec"
        return _failed(file, 0, 0, "too-large", msg)
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
        line, col = (mark.line + 1, mark.column + 1) if mark else (0, 0)
        return _failed(file, line, col, "yaml", f"invalid YAML: {_yaml_message(exc)}")
    except yaml.YAMLError as exc:  # ReaderError: a character YAML does not allow
        position = getattr(exc, "position", None)
        line, col = _line_col(text, position) if isinstance(position, int) else (0, 0)
        reason = getattr(exc, "reason", None) or str(exc)
        return _failed(file, line, col, "yaml", f"invalid YAML: {reason}")
    except RecursionError:  # only the pure-Python parser recurses without a limit
        return _failed(file, 0, 0, "yaml", f"the document is nested deeper than {MAX_DEPTH}")
    if node is None or (isinstance(node, yaml.ScalarNode) and node.tag == f"{_TAG}null"):
        return _failed(file, 1, 1, "yaml", "the file is empty", "start with `version: 1`")
    walker = _Walker()
    try:
        data = walker.value(node, (), 1)
    except _Refused as exc:
        line, col = _node_pos(exc.node) if exc.node is not None else (0, 0)
        return _failed(file, line, col, "yaml", str(exc), exc.hint)
    problems: list[Problem] = [
        Problem(file, *pos, "duplicate-key", msg, path=path, hint="remove one of them")
        for path, pos, msg in walker.duplicates
    ]
    problems += [
        Problem(file, *_node_pos(exc.node), exc.code, str(exc), path=path, hint=exc.hint)
        for path, exc in walker.soft
        if exc.node is not None
    ]
    if not isinstance(data, dict):
        got = _kind(data)
        problems.append(Problem(file, 1, 1, "yaml", f"the top level must be a mapping, not {got}"))
    return Loaded(file, data, walker.marks, tuple(problems), walker.value_marks, walker.surprises)


class _Walker:
    """Turns a composed node tree into JSON-like data, recording positions on the way."""

    def __init__(self) -> None:
        self.marks: Marks = {}
        self.value_marks: Marks = {}
        self.surprises: dict[JsonPath, Surprise] = {}
        self.duplicates: list[tuple[JsonPath, tuple[int, int], str]] = []
        self.soft: list[tuple[JsonPath, _Refused]] = []  # reported; the text stands in
        self.nodes = 0
        self.active: set[int] = set()  # ids of the collections being walked: cycles

    def value(self, node: yaml.Node, path: JsonPath, depth: int) -> Any:
        self.nodes += 1
        if self.nodes > MAX_NODES:
            raise _Refused(node, f"the document expands to more than {MAX_NODES} values")
        if depth > MAX_DEPTH:
            raise _Refused(node, f"the document is nested deeper than {MAX_DEPTH} levels")
        pos = _node_pos(node)
        self.marks.setdefault(path, pos)
        self.value_marks.setdefault(path, pos)
        if isinstance(node, yaml.ScalarNode):
            try:
                return self.scalar(node, path)
            except _Refused as exc:
                self.soft.append((path, exc))  # go on: report every such value at once
                return node.value
        if id(node) in self.active:
            raise _Refused(node, "an alias refers to the collection that contains it")
        self.active.add(id(node))
        try:
            if isinstance(node, yaml.SequenceNode):
                _expect_tag(node, "seq")
                return [
                    self.value(item, (*path, i), depth + 1) for i, item in enumerate(node.value)
                ]
            _expect_tag(node, "map")
            result: dict[str, Any] = {}
            self.mapping(node, path, depth, result, explicit=True)
            return result
        finally:
            self.active.discard(id(node))

    def mapping(
        self, node: yaml.Node, path: JsonPath, depth: int, out: dict[str, Any], *, explicit: bool
    ) -> None:
        merges: list[yaml.Node] = []
        for key_node, value_node in node.value:
            if key_node.tag == f"{_TAG}merge":  # `<<: *defaults`: explicit keys win
                merges.extend(
                    value_node.value if isinstance(value_node, yaml.SequenceNode) else [value_node]
                )
                continue
            key = _key(key_node)
            if key in out and explicit:
                pos = _node_pos(key_node)
                self.duplicates.append(((*path, key), pos, f"duplicate key {key!r}"))
            elif key in out:
                continue  # a merged key that an explicit one already set
            self.marks[(*path, key)] = _node_pos(key_node)
            out[key] = self.value(value_node, (*path, key), depth + 1)
        for merged in merges:
            if not isinstance(merged, yaml.MappingNode):
                raise _Refused(merged, "a merge key (`<<`) needs a mapping or a list of mappings")
            if id(merged) in self.active:
                raise _Refused(merged, "an alias refers to the collection that contains it")
            self.active.add(id(merged))
            self.mapping(merged, path, depth, out, explicit=False)
            self.active.discard(id(merged))

    def scalar(self, node: yaml.ScalarNode, path: JsonPath) -> Any:
        tag = node.tag
        if tag not in _SCALAR_TAGS:
            if tag == f"{_TAG}timestamp":
                raise _Refused(
                    node,
                    f"`{node.value}` is read as a date in YAML, not as a string",
                    f"quote it: '{node.value}'",
                    "unquoted-string",
                )
            raise _Refused(node, f"the tag {_short(tag)} is not allowed in a spec", _TAG_HINT)
        name = tag[len(_TAG) :]
        if name in ("str", "value"):
            return node.value
        try:
            value = _CONSTRUCT.yaml_constructors[tag](_CONSTRUCT, node)
        except (ValueError, KeyError) as exc:  # a huge integer, a bad bool...
            raise _Refused(node, f"`{_cut(node.value)}` is not a valid {name}: {exc}") from None
        if name == "int" and ":" in node.value:
            raise _Refused(
                node,
                f"`{node.value}` is read as the base-60 number {value} in YAML 1.1",
                f"quote it: '{node.value}'",
                "unquoted-string",
            )
        if name == "int" and abs(value) >= 2**63:
            raise _Refused(
                node,
                f"the number `{_cut(node.value)}` is too large",
                "quote it if you meant a string",
            )
        if name == "float" and not math.isfinite(value):
            raise _Refused(node, f"`{node.value}` is not a finite number", "quote it")
        if not node.style:  # plain, not quoted: YAML decided the type
            self.surprises[path] = Surprise(node.value, _TYPE_WORDS[name])
        return value


_TAG_HINT = "a spec holds plain data: strings, numbers, booleans, lists and mappings"


def _expect_tag(node: yaml.Node, name: str) -> None:
    if node.tag != f"{_TAG}{name}":
        raise _Refused(node, f"the tag {_short(node.tag)} is not allowed in a spec", _TAG_HINT)


def _key(node: yaml.Node) -> str:
    if not isinstance(node, yaml.ScalarNode):
        raise _Refused(node, "a mapping key must be a string, not a list or mapping")
    if node.tag in (f"{_TAG}str", f"{_TAG}value"):
        return str(node.value)
    word = {"bool": "a boolean", "null": "null", "int": "a number", "float": "a number"}.get(
        node.tag[len(_TAG) :]
    )
    if word is None:
        raise _Refused(node, f"the tag {_short(node.tag)} is not allowed in a spec", _TAG_HINT)
    shown = f"`{node.value}`" if node.value else "an empty key"
    raise _Refused(node, f"the key {shown} is read as {word}, not as a string", "quote it")


def _node_pos(node: yaml.Node) -> tuple[int, int]:
    return node.start_mark.line + 1, node.start_mark.column + 1


def _line_col(text: str, index: int | None) -> tuple[int, int]:
    before = text if index is None else text[:index]
    return before.count("\n") + 1, len(before) - (before.rfind("\n") + 1) + 1


def _failed(
    file: str, line: int, col: int, code: str, message: str, hint: str | None = None
) -> Loaded:
    return Loaded(file, None, {}, (Problem(file, line, col, code, message, hint=hint),))


def _yaml_message(exc: yaml.MarkedYAMLError) -> str:
    parts = [exc.context, exc.problem]
    message = "; ".join(p for p in parts if p) or str(exc)
    if "constructor for the tag" in message:
        message = "a tag that is not allowed in a spec"
    return message


def _short(tag: str) -> str:
    return "!!" + tag[len(_TAG) :] if tag.startswith(_TAG) else tag


def _cut(text: str) -> str:
    return text if len(text) <= 40 else text[:37] + "..."


def _show(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return repr(value)


def _kind(value: Any) -> str:
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return "a string"
    if value is None:
        return "null"
    return "a boolean" if isinstance(value, bool) else "a number"
