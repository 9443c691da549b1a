"""A composed YAML node tree -> plain data, with the position of every key and value.

Our own walk instead of PyYAML's constructor: it records positions, refuses what a spec never
needs (tags, alias bombs, deep nesting, huge or non-finite numbers, non-string keys) and
remembers YAML 1.1 scalars that were read as something other than the text written.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import yaml
from yaml.constructor import SafeConstructor

MAX_DEPTH = 64  # as docs/protocol.md's limit for config documents
MAX_NODES = 200_000  # after alias expansion: a billion-laughs file stops here

JsonPath = tuple[str | int, ...]
Marks = dict[JsonPath, tuple[int, int]]

_TAG = "tag:yaml.org,2002:"
_SCALAR_TAGS = {f"{_TAG}{t}" for t in ("str", "int", "float", "bool", "null", "value")}
_TYPE_WORDS = {"bool": "a boolean", "int": "a number", "float": "a number", "null": "null"}
_STR = f"{_TAG}str"
_CONSTRUCT = SafeConstructor()


class Surprise(NamedTuple):
    """A plain scalar that YAML 1.1 read as something other than a string."""

    text: str  # as written
    word: str  # "a boolean", "a number", "null"

    def explain(self, value: Any) -> str:
        if self.word == "null":
            shown = "an empty value" if self.text in ("", "~") else f"`{self.text}`"
            return f"{shown} is read as null, not as a string"
        return f"`{self.text}` is read as {self.word} ({_show(value)}), not as a string"


class Refused(Exception):
    def __init__(
        self, node: yaml.Node | None, message: str, hint: str | None = None, code: str = "yaml"
    ) -> None:
        super().__init__(message)
        self.node = node
        self.hint = hint
        self.code = code


class Walker:
    """Turns a composed node tree into JSON-like data, recording positions on the way."""

    def __init__(self) -> None:
        self.marks: Marks = {}
        self.value_marks: Marks = {}
        self.surprises: dict[JsonPath, Surprise] = {}
        self.duplicates: list[tuple[JsonPath, tuple[int, int], str]] = []
        self.soft: list[tuple[JsonPath, Refused]] = []  # reported; the text stands in
        self.nodes = 0
        self.active: set[int] = set()  # ids of the collections being walked: cycles

    def value(self, node: yaml.Node, path: JsonPath, depth: int) -> Any:
        self.nodes += 1
        if self.nodes > MAX_NODES:
            raise Refused(node, f"the document expands to more than {MAX_NODES} values")
        if depth > MAX_DEPTH:
            raise Refused(node, f"the document is nested deeper than {MAX_DEPTH} levels")
        mark = node.start_mark
        pos = (mark.line + 1, mark.column + 1)
        self.marks.setdefault(path, pos)
        self.value_marks.setdefault(path, pos)
        if isinstance(node, yaml.ScalarNode):
            if node.tag == _STR:  # most values: nothing to convert or to check
                return node.value
            try:
                return self.scalar(node, path)
            except Refused as exc:
                self.soft.append((path, exc))  # go on: report every such value at once
                return node.value
        if id(node) in self.active:
            raise Refused(node, "an alias refers to the collection that contains it")
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
                pos = node_pos(key_node)
                self.duplicates.append(((*path, key), pos, f"duplicate key {key!r}"))
            elif key in out:
                continue  # a merged key that an explicit one already set
            self.marks[(*path, key)] = node_pos(key_node)
            out[key] = self.value(value_node, (*path, key), depth + 1)
        for merged in merges:
            if not isinstance(merged, yaml.MappingNode):
                raise Refused(merged, "a merge key (`<<`) needs a mapping or a list of mappings")
            if id(merged) in self.active:
                raise Refused(merged, "an alias refers to the collection that contains it")
            self.active.add(id(merged))
            self.mapping(merged, path, depth, out, explicit=False)
            self.active.discard(id(merged))

    def scalar(self, node: yaml.ScalarNode, path: JsonPath) -> Any:
        tag = node.tag
        if tag not in _SCALAR_TAGS:
            if tag == f"{_TAG}timestamp":
                raise Refused(
                    node,
                    f"`{node.value}` is read as a date in YAML, not as a string",
                    f"quote it: '{node.value}'",
                    "unquoted-string",
                )
            raise Refused(node, f"the tag {_short(tag)} is not allowed in a spec", _TAG_HINT)
        name = tag[len(_TAG) :]
        if name in ("str", "value"):
            return node.value
        try:
            value = _CONSTRUCT.yaml_constructors[tag](_CONSTRUCT, node)
        except (ValueError, KeyError) as exc:  # a huge integer, a bad bool...
            raise Refused(node, f"`{_cut(node.value)}` is not a valid {name}: {exc}") from None
        if name == "int" and ":" in node.value:
            raise Refused(
                node,
                f"`{node.value}` is read as the base-60 number {value} in YAML 1.1",
                f"quote it: '{node.value}'",
                "unquoted-string",
            )
        if name == "int" and abs(value) >= 2**63:
            raise Refused(
                node,
                f"the number `{_cut(node.value)}` is too large",
                "quote it if you meant a string",
            )
        if name == "float" and not math.isfinite(value):
            raise Refused(node, f"`{node.value}` is not a finite number", "quote it")
        if not node.style:  # plain, not quoted: YAML decided the type
            self.surprises[path] = Surprise(node.value, _TYPE_WORDS[name])
        return value


_TAG_HINT = "a spec holds plain data: strings, numbers, booleans, lists and mappings"


def _expect_tag(node: yaml.Node, name: str) -> None:
    if node.tag != f"{_TAG}{name}":
        raise Refused(node, f"the tag {_short(node.tag)} is not allowed in a spec", _TAG_HINT)


def _key(node: yaml.Node) -> str:
    if not isinstance(node, yaml.ScalarNode):
        raise Refused(node, "a mapping key must be a string, not a list or mapping")
    if node.tag in (f"{_TAG}str", f"{_TAG}value"):
        return str(node.value)
    word = {"bool": "a boolean", "null": "null", "int": "a number", "float": "a number"}.get(
        node.tag[len(_TAG) :]
    )
    if word is None:
        raise Refused(node, f"the tag {_short(node.tag)} is not allowed in a spec", _TAG_HINT)
    message = f"the key `{node.value}` is read as {word}, not as a string"
    if not node.value:
        message = "an empty key is read as null, not as a string"
    raise Refused(node, message, "quote it" if node.value else None, "unquoted-string")


def node_pos(node: yaml.Node) -> tuple[int, int]:
    return node.start_mark.line + 1, node.start_mark.column + 1


def _short(tag: str) -> str:
    return "!!" + tag[len(_TAG) :] if tag.startswith(_TAG) else tag


def _cut(text: str) -> str:
    return text if len(text) <= 40 else text[:37] + "..."


def _show(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return repr(value)
