"""Problems -> text, one JSON document, or GitHub workflow annotations.

Plain `click.echo` is enough for all three, so validating never pays for importing rich.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Sequence
from typing import Literal

import click

from vmprep.errors import ExitCode
from vmprep.problems import Problem, Severity

Format = Literal["text", "json", "github"]
FORMATS: tuple[Format, ...] = ("text", "json", "github")
_COLORS = {Severity.ERROR: "red", Severity.WARNING: "yellow"}


def strict(problems: Sequence[Problem]) -> list[Problem]:
    """`--strict`: every warning becomes an error."""
    return [
        Problem(p.file, p.line, p.column, p.code, p.message, Severity.ERROR, p.path, p.hint)
        for p in problems
    ]


def exit_code(problems: Sequence[Problem]) -> ExitCode:
    return ExitCode.PROBLEMS if any(p.is_error for p in problems) else ExitCode.OK


def show(
    problems: Sequence[Problem],
    *,
    fmt: Format,
    files: int,
    color: bool | None = None,
    summary_line: bool = True,
) -> None:
    """Print `problems` (sorted) to stdout; for text, a one-line summary goes to stderr
    (not with `summary_line=False`: `--quiet`)."""
    try:
        _show(sorted(problems), fmt, files, color, summary_line)
    except BrokenPipeError:
        # The reader went away (`vmprep validate ... | head`): stop writing, keep the exit code.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())


def _show(
    problems: list[Problem], fmt: Format, files: int, color: bool | None, summary_line: bool
) -> None:
    if fmt == "json":
        click.echo(json.dumps(to_json(problems, files=files), indent=2, ensure_ascii=False))
    elif fmt == "github":
        for p in problems:
            click.echo(github_line(p))
    else:
        for p in problems:
            click.echo(text_lines(p, styled=True), color=color)
        if summary_line:
            click.echo(summary(problems, files=files), err=True, color=color)


def text_lines(p: Problem, *, styled: bool = False) -> str:
    severity = p.severity.value
    if styled:
        severity = click.style(severity, fg=_COLORS[p.severity], bold=True)
    line = f"{p.file}:{p.line}:{p.column}: {severity}: {p.message} ({p.code})"
    return f"{line}\n  hint: {p.hint}" if p.hint else line


def summary(problems: Sequence[Problem], *, files: int) -> str:
    errors = sum(p.is_error for p in problems)
    warnings = len(problems) - errors
    checked = f"{files} file{'s' if files != 1 else ''}"
    if not problems:
        return f"{checked} checked: no problems"
    parts = [f"{errors} error{'s' if errors != 1 else ''}"] if errors else []
    parts += [f"{warnings} warning{'s' if warnings != 1 else ''}"] if warnings else []
    return f"{checked} checked: {', '.join(parts)}"


def to_json(problems: Sequence[Problem], *, files: int) -> dict[str, object]:
    errors = sum(p.is_error for p in problems)
    return {
        "version": 1,
        "files": files,
        "errors": errors,
        "warnings": len(problems) - errors,
        "problems": [p.to_json() for p in problems],
    }


def github_line(p: Problem) -> str:
    """A workflow command: `::error file=f,line=3,col=5,title=vmprep (code)::message`."""
    kind = "error" if p.is_error else "warning"
    props = f"file={_prop(p.file)},line={max(p.line, 1)},col={max(p.column, 1)}"
    props += f",title={_prop(f'vmprep ({p.code})')}"
    message = p.message + (f"\nhint: {p.hint}" if p.hint else "")
    return f"::{kind} {props}::{_data(message)}"


def _data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _prop(text: str) -> str:
    return _data(text).replace(":", "%3A").replace(",", "%2C")
