from __future__ import annotations

from pathlib import Path

import click

from vmprep.wheelhouse import PLATFORMS


@click.command(
    epilog="""\b
Examples:
  vmprep wheelhouse -o wheels                                  # for this machine
  vmprep wheelhouse -o wheels --platform win_amd64 --python-version 3.13
  python -m pip install --no-index --find-links wheels vmprep  # then, on the build VM"""
)
@click.option(
    "-o", "--out", type=click.Path(path_type=Path), required=True, help="Directory to fill."
)
@click.option(
    "--platform",
    type=click.Choice(PLATFORMS),
    default="current",
    show_default=True,
    help="The build VM's platform (current: this machine's).",
)
@click.option(
    "--python-version",
    metavar="3.X",
    help="The build VM's Python, e.g. 3.12 (required with a --platform other than current).",
)
@click.option(
    "--source",
    type=click.Path(exists=True, path_type=Path),
    help="A vmprep checkout or wheel (default: the checkout vmprep runs from).",
)
def wheelhouse(out: Path, platform: str, python_version: str | None, source: Path | None) -> None:
    """Write vmprep and every dependency as wheels into OUT, for a build VM with no index:
    python -m pip install --no-index --find-links OUT vmprep"""
    from vmprep.wheelhouse import build

    built = build(out, platform, python_version, source)
    for name in built.wheels:
        click.echo(name)
    from vmprep.commands.reporters import say

    say(
        click.get_current_context(),
        f"wrote {len(built.wheels)} wheels to {out}; on the build VM: "
        f"python -m pip install --no-index --find-links {out.name} vmprep",
    )
