"""Render errors: a spec that validates but cannot be rendered (a missing secret, a path that
cannot go into SetupComplete.cmd, ...). Each problem carries the spec position that caused it."""

from __future__ import annotations

from vmprep.errors import InputError
from vmprep.problems import Problem
from vmprep.spec import Spec
from vmprep.spec.load import JsonPath


class RenderError(InputError):
    """One or more problems that stop `render`; nothing is written. Exit code 1."""

    def __init__(self, problems: list[Problem], *, hint: str | None = None) -> None:
        self.problems = sorted(problems)
        super().__init__("\n".join(str(p) for p in self.problems), hint=hint)


def problem(spec: Spec, path: JsonPath, code: str, message: str) -> Problem:
    """A render problem placed at `path` of `spec` (or its nearest parent present in the file)."""
    line, column = spec.position(path)
    return Problem(spec.loaded.file, line, column, code, message, path=path)


def fail(
    spec: Spec, path: JsonPath, code: str, message: str, hint: str | None = None
) -> RenderError:
    return RenderError([problem(spec, path, code, message)], hint=hint)
