from __future__ import annotations

from pathlib import Path

import click

from vmprep.commands.serve import configs_option, keys_option


@click.command(
    epilog="""\b
Examples:
  vmprep publish --configs configs --key fleet.pem -o site
  vmprep publish --configs configs --key old.pem --key new.pem -o site --base fleet"""
)
@configs_option
@keys_option
@click.option(
    "-o",
    "--output",
    "out",
    type=click.Path(path_type=Path),
    required=True,
    help="The tree to write (replaced whole).",
)
@click.option("--base", default="", help="Path prefix inside the tree, e.g. fleet/prod.")
@click.option("--allow-secrets", is_flag=True, help="Publish documents that hold resolved secrets.")
def publish(
    configs: Path, keys: tuple[Path, ...], out: Path, base: str, allow_secrets: bool
) -> None:
    """Write signed documents and .sig sidecars for static hosting."""
    from vmprep.server import require_extra

    require_extra("cryptography")
    from vmprep.server.keys import load_keys
    from vmprep.server.publish import publish as run

    result = run(configs, load_keys(list(keys)), out, base=base, allow_secrets=allow_secrets)
    for skipped in result.skipped:
        click.echo(f"warning: skipped {skipped}: needs `vmprep serve`", err=True)
    click.echo(f"published {len(result.documents)} document(s), serial {result.serial}, to {out}")
