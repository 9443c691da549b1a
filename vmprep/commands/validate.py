from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from vmprep.report import Format


@click.command()
@click.argument("paths", nargs=-1, required=True)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "json", "github"]),
    default="text",
    help="Lines (default), one JSON document, or GitHub Actions annotations.",
)
@click.option("--strict", is_flag=True, help="Treat warnings as errors (exit 1 on any).")
@click.option(
    "--config-repo",
    type=click.Path(file_okay=False, path_type=Path),
    help="A config repository (as for serve): check each spec against the role it names.",
)
@click.pass_context
def validate(
    ctx: click.Context,
    paths: tuple[str, ...],
    fmt: Format,
    strict: bool,
    config_repo: Path | None,
) -> None:
    """Check specs and config-repository files: files, directories (recursively) or globs."""
    from vmprep import report
    from vmprep.spec.discover import check_paths, expand_paths

    files = expand_paths(paths)
    problems = check_paths(files, config_repo)
    problems = report.strict(problems) if strict else problems
    color = (ctx.find_root().obj or {}).get("color")
    report.show(problems, fmt=fmt, files=len(files), color=color)
    ctx.exit(report.exit_code(problems))
