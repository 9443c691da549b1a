"""Semantic checks beyond the schema: small generators registered under a stable code.

Each check gets a schema-valid document (defaults applied) and yields `Finding`s; codes are
documented in docs/errors.md. The rules live in `rules_setup`, `rules_agent`, `rules_runtime`,
`rules_steps`, `rules_secrets` and `rules_roles`; this module is the registry and the runner.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Literal, NamedTuple

from vmprep.problems import Problem, Severity, format_path
from vmprep.spec.load import JsonPath, Loaded

Kind = Literal["spec", "roleConfig"]


class Finding(NamedTuple):
    path: JsonPath
    message: str
    severity: Severity = Severity.ERROR
    hint: str | None = None


class Doc:
    """What a check sees: the document with defaults applied, which kind of file it is, and
    the directory of the file (None when the document came from elsewhere): relative paths in
    a spec that name files on the rendering machine (`agent.runtime.embedded.zip`) start there."""

    def __init__(
        self,
        data: dict[str, Any],
        kind: Kind = "spec",
        raw: Any = None,
        base: Path | None = None,
        unprintable: bool = True,
    ) -> None:
        self.data = data
        self.kind = kind
        self.unprintable = unprintable  # False when the loader saw only printable strings
        self.raw = data if raw is None else raw  # the document as written, without defaults
        self.base = base
        self._steps = list(self._find_steps())

    def steps(self) -> list[tuple[JsonPath, dict[str, Any]]]:
        """Every step with its path: agent.steps for a spec, steps and instances[].steps else."""
        return self._steps

    def _find_steps(self) -> Iterator[tuple[JsonPath, dict[str, Any]]]:
        if self.kind == "spec":
            for i, step in enumerate(self.data.get("agent", {}).get("steps", [])):
                yield ("agent", "steps", i), step
            return
        for i, step in enumerate(self.data.get("steps", [])):
            yield ("steps", i), step
        for n, instance in enumerate(self.data.get("instances", [])):
            for i, step in enumerate(instance.get("steps", [])):
                yield ("instances", n, "steps", i), step

    @property
    def phone_home(self) -> dict[str, Any] | None:
        result: dict[str, Any] | None = self.data.get("agent", {}).get("phone_home")
        return result


Check = Callable[[Doc], Iterator[Finding]]
CHECKS: dict[str, tuple[Check, tuple[Kind, ...]]] = {}


def check(code: str, *kinds: Kind) -> Callable[[Check], Check]:
    """Register a check under `code` for the given kinds of file (default: specs only)."""

    def register(fn: Check) -> Check:
        CHECKS[code] = (fn, kinds or ("spec",))
        return fn

    return register


def all_checks() -> dict[str, tuple[Check, tuple[Kind, ...]]]:
    """Every registered check by code (importing the rules modules registers them)."""
    from vmprep.spec import (  # noqa: F401  (importing registers the checks)
        rules_agent,
        rules_inputs,
        rules_order,
        rules_platform,
        rules_roles,
        rules_runtime,
        rules_secrets,
        rules_setup,
        rules_steps,
        rules_text,
    )

    return CHECKS


def run_checks(
    loaded: Loaded, data: dict[str, Any], kind: Kind = "spec", base: Path | None = None
) -> Iterator[Problem]:
    registered = all_checks()

    doc = Doc(data, kind, loaded.data, base, loaded.unprintable)
    for code, (fn, kinds) in registered.items():
        if kind not in kinds:
            continue
        for f in fn(doc):
            line, col = loaded.value_position(f.path)
            yield Problem(
                loaded.file, line, col, code, f.message, f.severity, path=f.path, hint=f.hint
            )


def step_kind(step: dict[str, Any]) -> str:
    """The kind of a schema-valid step (the one key that is a step kind)."""
    from vmprep.spec.schema import step_kinds

    kinds = step_kinds()
    return next(k for k in step if k in kinds)


def dotted(path: JsonPath) -> str:
    """`agent.steps[2].download.url` for a message, long keys cut."""
    return format_path(path, key=cut)


SHOWN = 40  # characters of a value a message shows before it is cut


def cut(text: str, limit: int = SHOWN) -> str:
    """`text`, or its first `limit` characters and its length when it is longer."""
    if len(text) <= limit + 20:
        return text
    return f"{text[:limit]}... ({len(text)} characters)"


def shown(text: str) -> str:
    """A value in a message: quoted, and cut when it is long (report.py escapes controls)."""
    if len(text) <= SHOWN + 20:
        return f"'{text}'"
    return f"'{text[:SHOWN]}...' ({len(text)} characters)"


def quoted(text: str) -> str:
    """`'C:\\Tools'` as people write it (repr() would double every backslash)."""
    return f"'{text}'"
