from __future__ import annotations

from pathlib import Path

import click

from vmprep.errors import ExitCode, UsageError

F = click.Path(exists=True, dir_okay=False, path_type=Path)


@click.command()
@click.argument("spec_path", type=F, required=False)
@click.option("--config-repo", type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="A config repository: plan the role's document too.")  # fmt: skip
@click.option("--role", help="The role to plan for (default: the spec's, or a facts input).")
@click.option("--instance", help="The instance id (default: the facts', or plan-instance).")
@click.option("--platform", help="Plan for this platform instead of image.platform.")
@click.option("--facts", type=F, help="YAML/JSON: instance_id, computer_name, mac, platform, "
              "variables, inputs (what only the instance knows).")  # fmt: skip
@click.option("--python", metavar="PATH", help="python.exe on the image, as for render.")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text",
              show_default=True, help="Output format (json: docs/plan.md).")  # fmt: skip
@click.option("--diff", "diff", nargs=2, type=F, metavar="OLD NEW",
              help="Compare two JSON plans instead; exit 1 when they differ.")  # fmt: skip
@click.pass_context
def plan(
    ctx: click.Context,
    spec_path: Path | None,
    config_repo: Path | None,
    role: str | None,
    instance: str | None,
    platform: str | None,
    facts: Path | None,
    python: str | None,
    fmt: str,
    diff: tuple[Path, Path] | None,
) -> None:
    """What a new instance made from SPEC_PATH will do at first boot, without Windows.

    \b
    Examples:
      vmprep plan examples/domain-joined.yaml --config-repo examples/configs
      vmprep plan spec.yaml --format json > plan.json
      vmprep plan --diff old-plan.json new-plan.json
    """
    from vmprep.plan import core

    if diff is not None:
        if spec_path is not None:
            raise UsageError("--diff compares two plans: give no SPEC_PATH with it")
        changes = core.diff_files(*diff)
        for line in changes:
            click.echo(line)
        ctx.exit(ExitCode.PROBLEMS if changes else ExitCode.OK)
    if spec_path is None:
        raise UsageError("missing SPEC_PATH", hint="vmprep plan SPEC [--config-repo DIR]")
    click.echo(
        core.plan_output(spec_path, config_repo, role, instance, platform, facts, python, fmt),
        nl=False,
    )
