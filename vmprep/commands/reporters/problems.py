"""`validate`'s problems -> text, one JSON document, or GitHub workflow annotations.

Plain `click.echo` is enough for all three, so validating never pays for importing rich.
This is also the one place that makes text from a spec safe for a terminal or a CI log
(`printable`, defined beside Problem): every command prints file names, messages and values through it.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Sequence
from typing import Literal

import click

from vmprep.errors import ExitCode
from vmprep.problems import Problem, Severity, printable

Format = Literal["text", "json", "github"]
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
    if fmt == "json":  # every problem: a program reads it
        click.echo(json.dumps(to_json(problems, files=files), indent=2, ensure_ascii=False))
        return
    shown, rest = capped(problems)
    if fmt == "github":
        for p in shown:
            click.echo(github_line(p))
        for (file, code), count in rest.items():
            props = f"file={_prop(printable(file))},title={_prop(f'vmprep ({code})')}"
            click.echo(f"::notice {props}::{_data(_more(count, code))}")
        return
    for p in shown:
        click.echo(text_lines(p, styled=True), color=color)
    for (file, code), count in rest.items():
        click.echo(f"{printable(file)}: {_more(count, code)}", color=color)
    if summary_line:
        click.echo(summary(problems, files=files), err=True, color=color)


def show_checked(files: Sequence[str], problems: Sequence[Problem]) -> None:
    """`validate -v`: a line on stderr per file checked, with its count of problems."""
    counts = dict.fromkeys(files, 0)
    for p in problems:
        counts[p.file] = counts.get(p.file, 0) + 1
    for name, n in counts.items():
        click.echo(f"checked {name}: {n or 'no'} problem{'s' if n != 1 else ''}", err=True)


MAX_PER_CODE = 50  # problems of one code in one file shown before the rest are counted


def capped(problems: list[Problem]) -> tuple[list[Problem], dict[tuple[str, str], int]]:
    """The problems to show (at most MAX_PER_CODE of one code per file), and how many of each
    (file, code) were left out: a file with 50,000 copies of one mistake stays readable."""
    seen: dict[tuple[str, str], int] = {}
    shown: list[Problem] = []
    for p in problems:
        key = (p.file, p.code)
        seen[key] = seen.get(key, 0) + 1
        if seen[key] <= MAX_PER_CODE:
            shown.append(p)
    rest = {key: n - MAX_PER_CODE for key, n in seen.items() if n > MAX_PER_CODE}
    return shown, rest


def _more(count: int, code: str) -> str:
    return f"... and {count:,} more ({code}) not shown; --format json lists every problem"


def text_lines(p: Problem, *, styled: bool = False) -> str:
    severity = p.severity.value
    if styled:
        severity = click.style(severity, fg=_COLORS[p.severity], bold=True)
    line = f"{printable(p.file)}:{p.line}:{p.column}: {severity}: {printable(p.message)} ({p.code})"
    return f"{line}\n  hint: {printable(p.hint)}" if p.hint else line


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
    props = f"file={_prop(printable(p.file))},line={max(p.line, 1)},col={max(p.column, 1)}"
    props += f",title={_prop(f'vmprep ({p.code})')}"
    message = printable(p.message) + (f"\nhint: {printable(p.hint)}" if p.hint else "")
    return f"::{kind} {props}::{_data(message)}"


def _data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _prop(text: str) -> str:
    return _data(text).replace(":", "%3A").replace(",", "%2C")
