from __future__ import annotations

from pathlib import Path

import click

from vmprep.errors import ExitCode


@click.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.pass_context
def validate(ctx: click.Context, paths: tuple[Path, ...]) -> None:
    """Check each spec in PATHS against the schema and the semantic checks."""
    from vmprep.spec import check_file

    problems = [p for path in paths for p in check_file(path)]
    for problem in problems:
        click.echo(str(problem))
    ctx.exit(ExitCode.PROBLEMS if any(p.is_error for p in problems) else ExitCode.OK)
