"""Semantic checks beyond the schema: small generators registered under a stable code.

Each check gets a schema-valid document (defaults applied) and yields `Finding`s; codes are
documented in docs/errors.md.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from vmprep.problems import Problem, Severity
from vmprep.spec.load import JsonPath, Loaded


@dataclass(frozen=True)
class Finding:
    path: JsonPath
    message: str
    severity: Severity = Severity.ERROR
    hint: str | None = None


Check = Callable[[dict[str, Any]], Iterator[Finding]]
CHECKS: dict[str, Check] = {}


def check(code: str) -> Callable[[Check], Check]:
    def register(fn: Check) -> Check:
        CHECKS[code] = fn
        return fn

    return register


def run_checks(loaded: Loaded, data: dict[str, Any]) -> Iterator[Problem]:
    for code, fn in CHECKS.items():
        for f in fn(data):
            line, col = loaded.position(f.path)
            yield Problem(
                loaded.file, line, col, code, f.message, f.severity, path=f.path, hint=f.hint
            )


@check("unique-step-ids")
def unique_step_ids(data: dict[str, Any]) -> Iterator[Finding]:
    seen: set[str] = set()
    for i, step in enumerate(data.get("agent", {}).get("steps", [])):
        key = step["id"].casefold()
        if key in seen:
            yield Finding(("agent", "steps", i, "id"), f"step id {step['id']!r} is used twice")
        seen.add(key)
