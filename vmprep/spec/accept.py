"""Per-code control of `vmprep validate`: `--ignore`, `--warn-only`, and accept comments.

An accept comment keeps one known warning out of `--strict`, with its reason beside it:

    password: {env: VMPREP_ADMIN_PASSWORD}  # vmprep: accept secret-in-image -- rotated at first boot

It accepts warnings of that code on its own line, or, on a line of its own, on the next line.
Errors cannot be accepted (the image would not work), and an accept comment without a reason
is itself a warning (`accept-reason`): the reason is what a reviewer reads.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from pathlib import Path

from vmprep.problems import Problem, Severity

DIRECTIVE = re.compile(r"#\s*vmprep:\s*accept\s+([a-z0-9-]+)\s*(?:--\s*(.*\S))?\s*$")


def _accepts(text: str) -> tuple[dict[tuple[int, str], str], list[tuple[int, int, str]]]:
    """{(line, code): reason} for the lines each comment covers; comments lacking a reason."""
    accepted: dict[tuple[int, str], str] = {}
    unexplained: list[tuple[int, int, str]] = []
    for number, line in enumerate(text.splitlines(), 1):
        match = DIRECTIVE.search(line)
        if match is None:
            continue
        code, reason = match.group(1), match.group(2)
        if not reason:
            unexplained.append((number, match.start() + 1, code))
            continue
        own_line = not line[: match.start()].strip()
        accepted[(number + 1 if own_line else number, code)] = reason
    return accepted, unexplained


def apply_accepts(problems: Sequence[Problem], files: Iterable[Path]) -> list[Problem]:
    """`problems` without the warnings an accept comment in their file covers."""
    by_file: dict[str, dict[tuple[int, str], str]] = {}
    extra: list[Problem] = []
    for path in files:
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            continue  # the checks have said why already
        accepted, unexplained = _accepts(text)
        by_file[str(path)] = accepted
        extra += [
            Problem(
                str(path),
                line,
                column,
                "accept-reason",
                f"the accept comment for {code!r} gives no reason",
                Severity.WARNING,
                hint=f"write it as: # vmprep: accept {code} -- <why this is acceptable here>",
            )
            for line, column, code in unexplained
        ]
    kept = [p for p in problems if p.is_error or (p.line, p.code) not in by_file.get(p.file, {})]
    return sorted(kept + extra)


def select(
    problems: Sequence[Problem], *, ignore: Iterable[str] = (), warn_only: Iterable[str] = ()
) -> list[Problem]:
    """`--ignore CODE` drops that code's problems; `--warn-only CODE` reports them as warnings
    (so neither `--strict` nor the exit code counts them)."""
    dropped, softened = set(ignore), set(warn_only)
    return [
        Problem(p.file, p.line, p.column, p.code, p.message, Severity.WARNING, p.path, p.hint)
        if p.code in softened
        else p
        for p in problems
        if p.code not in dropped
    ]
