"""JSON Schema errors -> Problems placed at their line and column."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from vmprep.problems import Problem
from vmprep.spec.load import Loaded
from vmprep.spec.schema import validator


def schema_problems(loaded: Loaded, definition: str | None = None) -> Iterator[Problem]:
    for error in validator(definition).iter_errors(loaded.data):
        path = tuple(error.absolute_path)
        line, col = loaded.position(path)
        yield Problem(loaded.file, line, col, "schema", _message(error), path=path)


def _message(error: Any) -> str:
    where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error.absolute_path)
    return f"${where}: {error.message}"
