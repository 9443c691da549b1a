from __future__ import annotations

from pathlib import Path

import click


@click.command(
    epilog="""\b
Examples:
  vmprep keygen -o fleet
  vmprep keygen -o keys/2027   # keys/ must exist"""
)
@click.option(
    "-o",
    "--output",
    "name",
    type=click.Path(path_type=Path),
    required=True,
    help="Writes NAME.pem (private, 0600) and NAME.pub.",
)
def keygen(name: Path) -> None:
    """Create an Ed25519 signing key for `serve` and `publish`."""
    from vmprep.server import require_extra

    require_extra("cryptography")
    from vmprep.server.keys import write_keypair

    key = write_keypair(name)
    from vmprep.commands.reporters import say

    say(click.get_current_context(), f"wrote {name}.pem (private, keep it secret) and {name}.pub")
    click.echo(f"key id: {key.key_id}")
    click.echo(f"public key (for agent.phone_home.trusted_keys): {key.public_form}")
