from __future__ import annotations

from pathlib import Path

import click

from vmprep.errors import UsageError


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
    result = core.render(spec, python, chain, embedded=embedded)
    core.write_tree(result, out, force=force)
    click.echo(f"rendered {spec_path} into {out}", err=True)
    for line in result.summary():
        click.echo(f"  {line}", err=True)


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
    spec: object,
    python: str | None,
    chain: str | None,
    embedded: tuple[Path, str] | None,
    fmt: str,
) -> None:
    from rich.markup import escape
    from rich.table import Table

    from vmprep.cli import output
    from vmprep.render.explain import explain, explain_json
    from vmprep.spec import Spec

    assert isinstance(spec, Spec)
    rows = explain(spec, python, chain, embedded=embedded)
    if fmt == "json":
        import json

        click.echo(json.dumps(explain_json(spec, rows), indent=2, ensure_ascii=False))
        return
    tables: dict[str, Table] = {}
    for row in rows:
        if row.target not in tables:
            tables[row.target] = table = Table(title=escape(row.target), title_justify="left")
            for column in ("setting", "value", f"from {spec.path.name} (line:col path)"):
                table.add_column(escape(column), overflow="fold")
        tables[row.target].add_row(escape(row.what), escape(row.value), escape(row.source))
    for table in tables.values():
        output(ctx).out.print(table)
