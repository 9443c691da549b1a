"""The loaded, checked spec with the schema's defaults applied."""

from __future__ import annotations

import copy
import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vmprep.errors import InputError
from vmprep.problems import Problem
from vmprep.spec.load import JsonPath, Loaded, load_file


class SpecError(InputError):
    """A spec with errors; `problems` holds all of them, sorted."""

    def __init__(self, problems: list[Problem]) -> None:
        first = problems[0]
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        super().__init__(f"{first}{more}", hint="run `vmprep validate` to see every problem")
        self.problems = problems


@dataclass(frozen=True)
class Spec:
    """A valid spec. `data` is the document with every schema default filled in."""

    path: Path
    data: dict[str, Any]
    loaded: Loaded
    sha256: str

    def position(self, path: JsonPath) -> tuple[int, int]:
        return self.loaded.position(path)

    @property
    def image(self) -> dict[str, Any]:
        return self.data["image"]  # type: ignore[no-any-return]

    @property
    def setup(self) -> dict[str, Any]:
        return self.data["setup"]  # type: ignore[no-any-return]

    @property
    def sysprep(self) -> dict[str, Any]:
        return self.data["sysprep"]  # type: ignore[no-any-return]

    @property
    def agent(self) -> dict[str, Any]:
        return self.data["agent"]  # type: ignore[no-any-return]


def _problems(path: Path) -> tuple[Loaded, list[Problem], dict[str, Any] | None]:
    from vmprep.spec.checks import run_checks
    from vmprep.spec.validate import schema_problems

    loaded = load_file(path)
    problems = list(loaded.problems)
    if problems or not isinstance(loaded.data, dict):
        return loaded, sorted(problems), None
    problems.extend(schema_problems(loaded))
    if problems:
        return loaded, sorted(problems), None
    data = apply_defaults(loaded.data)
    problems.extend(run_checks(loaded, data))
    return loaded, sorted(problems), data


def check_file(path: Path) -> list[Problem]:
    return _problems(path)[1]


def load_spec(path: Path) -> Spec:
    loaded, problems, data = _problems(path)
    errors = [p for p in problems if p.is_error]
    if errors or data is None:
        raise SpecError(errors or problems)
    return Spec(path, data, loaded, hashlib.sha256(path.read_bytes()).hexdigest())


def apply_defaults(data: dict[str, Any], definition: str | None = None) -> dict[str, Any]:
    """A deep copy of `data` with the schema's `default`s filled in where a key is absent."""
    from vmprep.spec.schema import schema

    root = schema()
    node = root if definition is None else root["$defs"][definition]
    result = copy.deepcopy(data)
    _fill(result, node, root)
    return result


def _resolve(node: dict[str, Any], root: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        node = root["$defs"][node["$ref"].rsplit("/", 1)[-1]]
    return node


def _fill(value: Any, node: dict[str, Any], root: dict[str, Any]) -> None:
    node = _resolve(node, root)
    if isinstance(value, dict) and "properties" in node:
        for key, sub in node["properties"].items():
            sub = _resolve(sub, root)
            if key not in value and "default" in sub:
                value[key] = copy.deepcopy(sub["default"])
            if key in value:
                _fill(value[key], sub, root)
    elif isinstance(value, list) and isinstance(node.get("items"), dict):
        for item in value:
            _fill(item, node["items"], root)
