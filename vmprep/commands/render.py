from __future__ import annotations

from pathlib import Path

import click

from vmprep.errors import UsageError


@click.command()
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
    "--python", metavar="PATH", help="python.exe on the image (overrides agent.runtime.python)."
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
    python: str | None,
    chain: str | None,
    allow_secret_paths: tuple[Path, ...],
) -> None:
    """Render SPEC_PATH into OUT: unattend.xml, SetupComplete.cmd, the agent and a manifest."""
    from vmprep import render as core
    from vmprep.spec import load_spec

    spec = load_spec(spec_path)
    if explain:
        return _show_explain(ctx, spec, python, chain)
    if out is None:
        raise UsageError("missing the output directory", hint="pass -o OUT (or --explain)")
    result = core.render(spec, python, chain, allow_secret_paths=allow_secret_paths)
    core.write_tree(result, out, force=force, spec_path=spec_path)
    from vmprep.problems import printable

    click.echo(f"rendered {printable(str(spec_path))} into {printable(str(out))}", err=True)


def _show_explain(ctx: click.Context, spec: object, python: str | None, chain: str | None) -> None:
    from rich.markup import escape
    from rich.table import Table

    from vmprep.cli import output
    from vmprep.problems import printable
    from vmprep.render.explain import explain
    from vmprep.spec import Spec

    assert isinstance(spec, Spec)
    tables: dict[str, Table] = {}
    for row in explain(spec, python, chain):
        if row.target not in tables:
            title = escape(printable(row.target))
            tables[row.target] = table = Table(title=title, title_justify="left")
            for column in ("setting", "value", f"from {spec.path.name} (line:col path)"):
                table.add_column(escape(printable(column)), overflow="fold")
        cells = (row.what, row.value, row.source)
        tables[row.target].add_row(*(escape(printable(cell)) for cell in cells))
    for table in tables.values():
        output(ctx).out.print(table)
