from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from vmprep.commands.reporters.problems import Format


@click.command(
    epilog="""\b
Examples:
  vmprep validate vmprep.yaml
  vmprep validate --strict images/ configs/
  vmprep validate --strict --warn-only secret-in-image 'images/**/*.yaml'
  cat spec.yaml | vmprep validate -
\b
Accept one known warning in the spec, with the reason (counts neither as a warning nor
under --strict):
  password: {env: ADMIN_PW}  # vmprep: accept secret-in-image -- rotated at first boot"""
)
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
    "--ignore", "ignore", multiple=True, metavar="CODE", help="Drop problems with this code."
)
@click.option(
    "--warn-only",
    "warn_only",
    multiple=True,
    metavar="CODE",
    help="Report problems with this code as warnings, even under --strict.",
)
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
    ignore: tuple[str, ...],
    warn_only: tuple[str, ...],
    config_repo: Path | None,
) -> None:
    """Check specs and config-repository files: files, directories (recursively), globs, or
    `-` for standard input."""
    from vmprep.commands.reporters import problems as report
    from vmprep.spec.accept import apply_accepts, select
    from vmprep.spec.discover import check_paths, check_stdin, expand_paths

    files = expand_paths(p for p in paths if p != "-")
    problems = apply_accepts(check_paths(files, config_repo), files)
    if "-" in paths:
        problems += check_stdin(sys.stdin.buffer.read())
    problems = report.strict(problems) if strict else problems
    problems = select(problems, ignore=ignore, warn_only=warn_only)
    from vmprep.commands.reporters import color as color_of
    from vmprep.commands.reporters import verbosity

    color = color_of(ctx)
    if verbosity(ctx) > 0 and fmt == "text":  # -v: every file checked, with its count
        report.show_checked([str(f) for f in files], problems)
    report.show(
        problems,
        fmt=fmt,
        files=len(files) + ("-" in paths),
        color=color,
        summary_line=verbosity(ctx) >= 0,
    )
    ctx.exit(report.exit_code(problems))
