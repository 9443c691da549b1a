"""The one home of vmprep's output: core packages return values (problems, a render result and
its explanation, a sysprep plan and outcome, a status view); these modules show them as text,
rich tables or JSON. Only `vmprep/cli.py` and `vmprep/commands/` import them (and click/rich).

- this package itself: the two consoles (data on stdout, messages on stderr), `say` and the
  verbosity (here, not in a submodule: every command needs them, and a module less to
  import keeps `vmprep validate` starting fast).
- `problems`: `validate`'s problems as text, JSON or GitHub annotations (click only, no rich).
- `explain`: `render --explain` as tables or JSON.
- `sysprep`: `sysprep`'s checks, plan, progress lines and outcome.
- `status`: `status`'s instance table or JSON.
"""

from __future__ import annotations

import os
import sys
from functools import cached_property
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from rich.console import Console

UNWRAPPED = 1000  # columns for output that is not a terminal


def _isatty(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


class Output:
    """The two consoles: data to stdout, messages to stderr. Created on first use."""

    def __init__(self, *, color: bool | None = None, verbosity: int = 0) -> None:
        self._color = color
        self.verbosity = verbosity  # -1 --quiet, 0, or the number of -v

    def _console(self, *, stderr: bool) -> Console:
        from rich.console import Console

        stream = sys.stderr if stderr else sys.stdout
        no_color = self._color is False or None
        # Piped (Packer and WinRM logs): no wrapping at 80 columns; a table as wide as it needs.
        piped = not self._color and not _isatty(stream) and "COLUMNS" not in os.environ
        return Console(
            file=stream,
            stderr=stderr,
            no_color=no_color,
            force_terminal=True if self._color else None,
            highlight=False,
            soft_wrap=True,
            width=UNWRAPPED if piped else None,
        )

    @cached_property
    def out(self) -> Console:
        return self._console(stderr=False)

    @cached_property
    def err(self) -> Console:
        return self._console(stderr=True)


def verbosity(ctx: click.Context) -> int:
    """-1 with --quiet, 0 by default, the number of -v otherwise."""
    obj = ctx.find_root().obj
    return int((obj or {}).get("verbosity", 0))


def color(ctx: click.Context) -> bool | None:
    """--color/--no-color/NO_COLOR as the group decided (None: auto)."""
    obj = ctx.find_root().obj
    result: bool | None = (obj or {}).get("color")
    return result


def say(ctx: click.Context, message: str, *, level: int = 0) -> None:
    """A message for people on stderr, unless the verbosity is below `level`
    (0: progress and results, hidden by -q; 1: details shown with -v)."""
    if verbosity(ctx) >= level:
        click.echo(message, err=True)


def output(ctx: click.Context) -> Output:
    """The Output of the running command (for use inside commands)."""
    obj = ctx.find_root().obj
    if obj is None:  # a command invoked without the group (tests)
        return Output()
    result: Output = obj["output"]
    return result
