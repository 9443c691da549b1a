from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from vmprep.errors import UsageError

if TYPE_CHECKING:
    from vmprep.spec import Spec


@click.command(
    epilog="""\b
Examples:
  vmprep render vmprep.yaml -o out
  vmprep render vmprep.yaml -o out --force --python 'C:\\Python313\\python.exe'
  vmprep render vmprep.yaml --explain
  vmprep render vmprep.yaml --explain --format json | jq '.rows[] | select(.file | test("unattend"))'"""
)
@click.argument("spec_path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "-o",
    "--out",
    "--output",
    "out",
    type=click.Path(path_type=Path),
    help="Overlay directory to create.",
)
@click.option("--force", is_flag=True, help="Replace OUT if it exists.")
@click.option("--explain", is_flag=True, help="Print what goes where; write nothing.")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "json"]),
    default="text",
    help="With --explain: tables (default) or one JSON document.",
)
@click.option(
    "--python", metavar="PATH", help="python.exe on the image (overrides agent.runtime.python)."
)
@click.option(
    "--embedded-python",
    "embedded_zip",
    metavar="ZIP",
    type=click.Path(path_type=Path),
    help="Bundle this Windows embeddable CPython zip (overrides agent.runtime).",
)
@click.option(
    "--embedded-sha256",
    metavar="HEX",
    help="The zip's SHA-256 (required with --embedded-python).",
)
@click.option(
    "--chain-setupcomplete",
    "chain",
    metavar="PATH",
    help="Windows path of an existing SetupComplete.cmd to run before the agent.",
)
@click.option(
    "--allow-secret-path",
    "allow_secret_paths",
    multiple=True,
    metavar="DIR",
    type=click.Path(file_okay=False, path_type=Path),
    help="A directory outside the spec's that {file: ...} secrets may be read from "
    "(repeatable; also VMPREP_ALLOW_SECRET_PATH).",
)
@click.pass_context
def render(
    ctx: click.Context,
    spec_path: Path,
    out: Path | None,
    force: bool,
    explain: bool,
    fmt: str,
    python: str | None,
    embedded_zip: Path | None,
    embedded_sha256: str | None,
    chain: str | None,
    allow_secret_paths: tuple[Path, ...],
) -> None:
    """Render SPEC_PATH into OUT: unattend.xml, SetupComplete.cmd, the agent and a manifest."""
    from vmprep import render as core
    from vmprep.spec import load_spec

    if fmt == "json" and not explain:
        raise UsageError("--format json goes with --explain", hint="add --explain")
    embedded = _embedded_option(python, embedded_zip, embedded_sha256)
    spec = load_spec(spec_path)
    if explain:
        return _show_explain(ctx, spec, python, chain, embedded, fmt)
    if out is None:
        raise UsageError("missing the output directory", hint="pass -o OUT (or --explain)")
    result = core.render(
        spec, python, chain, embedded=embedded, allow_secret_paths=allow_secret_paths
    )
    core.write_tree(result, out, force=force, spec_path=spec_path)
    from vmprep.commands.reporters import say
    from vmprep.problems import printable

    say(ctx, f"rendered {printable(str(spec_path))} into {printable(str(out))}")
    for line in result.summary():
        say(ctx, f"  {printable(line)}")
    for name, data in sorted(result.files.items()):  # -v: every file and where it goes
        say(ctx, f"  {printable(result.targets[name])} ({len(data)} bytes)", level=1)


def _embedded_option(
    python: str | None, zip_file: Path | None, sha256: str | None
) -> tuple[Path, str] | None:
    import re

    if zip_file is None:
        if sha256 is not None:
            raise UsageError("--embedded-sha256 without --embedded-python ZIP")
        return None
    if python is not None:
        raise UsageError(
            "--python and --embedded-python both name the runtime",
            hint="pass one: an interpreter on the image, or a zip to bundle",
        )
    if sha256 is None or not re.fullmatch(r"[0-9a-fA-F]{64}", sha256):
        raise UsageError(
            "--embedded-python needs --embedded-sha256 HEX (64 hexadecimal digits)",
            hint="the SHA-256 python.org publishes beside the zip",
        )
    return zip_file, sha256


def _show_explain(
    ctx: click.Context,
    spec: Spec,
    python: str | None,
    chain: str | None,
    embedded: tuple[Path, str] | None,
    fmt: str,
) -> None:
    from vmprep.commands.reporters import output
    from vmprep.commands.reporters.explain import show_explain
    from vmprep.render import render
    from vmprep.render.explain import explain

    # Placeholders: the result holds `<secret:NAME>` for each secret, none is resolved.
    result = render(spec, python, chain, embedded=embedded, placeholders=True)
    show_explain(output(ctx), spec, explain(spec, result), fmt)
