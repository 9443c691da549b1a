from __future__ import annotations

from pathlib import Path

import click

from vmprep.commands.serve import configs_option, keys_option


@click.command(
    epilog="""\b
Examples:
  vmprep publish --configs configs --key fleet.pem -o site
  vmprep publish --configs configs --key old.pem --key new.pem -o site --base fleet
  vmprep publish --configs configs --key fleet.pem --to s3://my-bucket/fleet
  vmprep publish --configs configs --key fleet.pem --to az://web/fleet --grace 48h
  vmprep publish --configs configs --key fleet.pem --to gs://my-bucket/fleet"""
)
@configs_option
@keys_option
@click.option(
    "-o",
    "--output",
    "out",
    type=click.Path(path_type=Path),
    help="The local tree to write (replaced whole).",
)
@click.option(
    "--to",
    "to",
    metavar="URL",
    help="Object storage instead: s3://bucket/prefix, az://container/prefix or gs://bucket/prefix.",
)
@click.option(
    "--endpoint-url",
    metavar="URL",
    help="With --to: the store's endpoint (an S3-compatible store, an emulator, a private cloud).",
)
@click.option(
    "--grace",
    metavar="DURATION",
    default="24h",
    show_default=True,
    help="With --to: how long an object no longer published stays before it is deleted.",
)
@click.option("--base", default="", help="Path prefix inside the tree, e.g. fleet/prod.")
@click.option("--allow-secrets", is_flag=True, help="Publish documents that hold resolved secrets.")
def publish(
    configs: Path,
    keys: tuple[Path, ...],
    out: Path | None,
    to: str | None,
    endpoint_url: str | None,
    grace: str,
    base: str,
    allow_secrets: bool,
) -> None:
    """Write signed documents and .sig sidecars for static hosting, or upload them to object
    storage."""
    if (out is None) == (to is None):
        raise click.UsageError("give exactly one of -o/--output and --to")
    if to is None and endpoint_url is not None:
        raise click.UsageError("--endpoint-url goes with --to")
    from vmprep.server import require_extra

    require_extra("cryptography")
    from vmprep.problems import printable
    from vmprep.server.keys import load_keys

    if to is not None:
        from vmprep.protocol.durations import parse_duration
        from vmprep.server.upload import parse_target, publish_to

        try:
            grace_s = parse_duration(grace)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--grace") from None
        target = parse_target(to)
        done = publish_to(
            configs,
            load_keys(list(keys)),
            target,
            endpoint_url=endpoint_url,
            base=base,
            allow_secrets=allow_secrets,
            grace=grace_s,
        )
        for skipped in done.skipped:
            click.echo(f"warning: skipped {printable(skipped)}: needs `vmprep serve`", err=True)
        for rel in done.deleted:
            click.echo(f"deleted stale {printable(rel)}", err=True)
        click.echo(
            f"published {len(done.documents)} document(s), serial {done.serial}, to "
            f"{printable(str(target))}"
            + (
                f" ({len(done.kept_stale)} stale object(s) kept for --grace)"
                if done.kept_stale
                else ""
            )
        )
        return

    from vmprep.server.publish import publish as run

    assert out is not None
    result = run(configs, load_keys(list(keys)), out, base=base, allow_secrets=allow_secrets)
    for skipped in result.skipped:
        click.echo(f"warning: skipped {printable(str(skipped))}: needs `vmprep serve`", err=True)
    click.echo(
        f"published {len(result.documents)} document(s), serial {result.serial}, to {printable(str(out))}"
    )
