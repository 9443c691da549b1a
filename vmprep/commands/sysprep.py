from __future__ import annotations

from pathlib import Path
from typing import Literal

import click


def _duration(ctx: click.Context, param: click.Parameter, value: str | None) -> float | None:
    from vmprep.sysprep.generalize import parse_duration

    try:
        return None if value is None else parse_duration(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


def complete_check_id(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[str]:
    """Shell completion of --skip-check: the preflight check ids."""
    from vmprep.sysprep.preflight import check_ids

    return [i for i in check_ids() if i.startswith(incomplete)]


@click.command(
    epilog="""\b
Examples:
  vmprep sysprep --check vmprep.yaml
  vmprep sysprep --generalize --dry-run vmprep.yaml
  vmprep sysprep --generalize --no-shutdown --format json vmprep.yaml
\b
Exit codes: 0 ok, 1 spec problems, 3 preflight refused (nothing changed),
4 sysprep failed (files restored). See docs/sysprep.md."""
)
@click.argument(
    "spec_path", required=False, type=click.Path(exists=True, dir_okay=False, path_type=Path)
)
@click.option("--check", is_flag=True, help="Run the preflight checks only.")
@click.option("--generalize", is_flag=True, help="Install and run Sysprep.")
@click.option("--restore", is_flag=True, help="Undo an unfinished install.")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "json"]),
    default="text",
    help="A table (default) or one JSON document on stdout.",
)
@click.option(
    "--skip-check",
    "skip",
    multiple=True,
    metavar="ID",
    shell_complete=complete_check_id,
    help="Skip one check (loudly).",
)
@click.option("--fix-appx", is_flag=True, help="Remove per-user AppX packages that block Sysprep.")
@click.option("--dry-run", is_flag=True, help="Show checks, files and command; change nothing.")
@click.option("--no-shutdown", is_flag=True, help="Leave the VM running (for Packer).")
@click.option(
    "--root",
    type=click.Path(file_okay=False, exists=True, path_type=Path),
    help="A directory standing for the system drive (tests, docs, CI).",
)
@click.option(
    "--sysprep-exe",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Sysprep executable (default: ROOT\\Windows\\System32\\Sysprep\\sysprep.exe).",
)
@click.option(
    "--timeout",
    callback=_duration,
    metavar="DURATION",
    help="Sysprep time limit (default: the spec's).",
)
@click.pass_context
def sysprep(
    ctx: click.Context,
    /,
    spec_path: Path | None,
    check: bool,
    generalize: bool,
    restore: bool,
    fmt: Literal["text", "json"],
    skip: tuple[str, ...],
    fix_appx: bool,
    dry_run: bool,
    no_shutdown: bool,
    root: Path | None,
    sysprep_exe: Path | None,
    timeout: float | None,
) -> None:
    """Check, then generalize this reference VM with SPEC_PATH's answer file and agent."""
    from vmprep.commands.reporters import output
    from vmprep.commands.reporters.sysprep import SysprepReporter
    from vmprep.sysprep.session import Mode, Options, run

    modes: dict[Mode, bool] = {"check": check, "generalize": generalize, "restore": restore}
    chosen = [name for name, on in modes.items() if on]
    if len(chosen) > 1:  # one of them silently winning would be a surprise on a reference VM
        raise click.UsageError(" and ".join(f"--{m}" for m in chosen) + " cannot be combined")
    options = Options(
        mode=chosen[0] if chosen else None,
        spec_path=spec_path,
        skip=skip,
        fix_appx=fix_appx,
        dry_run=dry_run,
        no_shutdown=no_shutdown,
        root=root,
        sysprep_exe=sysprep_exe,
        timeout=timeout,
    )
    ctx.exit(run(options, SysprepReporter(output(ctx), fmt)))
