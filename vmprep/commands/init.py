from __future__ import annotations

from pathlib import Path

import click


@click.command(
    epilog="""\b
Examples:
  vmprep init
  vmprep init images/web.yaml   # makes images/"""
)
@click.argument("path", type=click.Path(path_type=Path), default=Path("vmprep.yaml"))
@click.option("--force", is_flag=True, help="Replace PATH if it exists.")
@click.pass_context
def init(ctx: click.Context, path: Path, force: bool) -> None:
    """Write a commented starter spec to PATH (default: vmprep.yaml)."""
    from vmprep.commands.reporters import say
    from vmprep.spec.starter import write_starter

    write_starter(path, force=force)
    say(ctx, f"wrote {path}; check it with: vmprep validate {path}")
