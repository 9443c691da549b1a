"""YAML loading with a line/column for every key and index path."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from vmprep.problems import Problem

MAX_BYTES = 1024 * 1024

JsonPath = tuple[str | int, ...]
Marks = dict[JsonPath, tuple[int, int]]


@dataclass(frozen=True)
class Loaded:
    """A parsed document: the data, where each path sits in the file, and load problems."""

    file: str
    data: Any
    marks: Marks
    problems: tuple[Problem, ...]

    def position(self, path: JsonPath) -> tuple[int, int]:
        """The line and column of `path`, or of its nearest placed parent."""
        while path:
            if path in self.marks:
                return self.marks[path]
            path = path[:-1]
        return self.marks.get((), (1, 1))


def load_text(text: str, file: str) -> Loaded:
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (0, 0)
        msg = exc.problem or str(exc)
        return Loaded(file, None, {}, (Problem(file, line, col, "yaml", f"invalid YAML: {msg}"),))
    if node is None:
        return Loaded(file, None, {}, (Problem(file, 1, 1, "yaml", "the file is empty"),))
    marks: Marks = {}
    problems: list[Problem] = []
    _walk(node, (), marks, problems, file)
    data = yaml.SafeLoader(text).construct_document(node)
    if not isinstance(data, dict):
        problems.append(Problem(file, 1, 1, "yaml", "the top level must be a mapping"))
    return Loaded(file, data, marks, tuple(problems))


def load_file(path: Path) -> Loaded:
    file = str(path)
    raw = path.read_bytes()
    if len(raw) > MAX_BYTES:
        msg = f"the file is {len(raw)} bytes; the limit is {MAX_BYTES}"
        return Loaded(file, None, {}, (Problem(file, 0, 0, "too-large", msg),))
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        msg = f"the file is not UTF-8 (byte {exc.start})"
        return Loaded(file, None, {}, (Problem(file, 0, 0, "encoding", msg),))
    return load_text(text, file)


def _walk(
    node: yaml.Node, path: JsonPath, marks: Marks, problems: list[Problem], file: str
) -> None:
    marks.setdefault(path, (node.start_mark.line + 1, node.start_mark.column + 1))
    if isinstance(node, yaml.MappingNode):
        seen: set[Any] = set()
        for key, value in node.value:
            pos = (key.start_mark.line + 1, key.start_mark.column + 1)
            if key.value in seen:
                problems.append(
                    Problem(file, *pos, "duplicate-key", f"duplicate key {key.value!r}")
                )
            seen.add(key.value)
            marks[(*path, key.value)] = pos
            _walk(value, (*path, key.value), marks, problems, file)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _walk(item, (*path, index), marks, problems, file)
