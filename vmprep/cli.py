"""The `vmprep` command line: a click group whose commands are imported only when run.

Each command lives in `vmprep/commands/<name>.py` and stays thin: parse options, call one
core function, report, pick the exit code. Loading them lazily keeps `vmprep --help` and
`vmprep validate` fast (rich, jsonschema and the server stack load only when needed).
"""

from __future__ import annotations

import importlib
import os
import re
from typing import Any

import click

from vmprep import __version__
from vmprep.errors import ExitCode, VmprepError

# name -> (module, short help). The short help is here so `--help` imports no command.
COMMANDS: dict[str, tuple[str, str]] = {
    "validate": ("vmprep.commands.validate", "Check specs (and config repositories) for problems."),
    "schema": ("vmprep.commands.schema", "Print the spec's JSON Schema."),
    "keygen": ("vmprep.commands.keygen", "Create an Ed25519 key for signing instance configs."),
    "serve": ("vmprep.commands.serve", "Serve signed instance configs and collect status reports."),
    "db": ("vmprep.commands.db", "Create or upgrade the PostgreSQL store of `vmprep serve`."),
    "publish": ("vmprep.commands.publish", "Write signed configs as static files for any host."),
    "status": ("vmprep.commands.status", "Show what each instance reported to `vmprep serve`."),
    "render": (
        "vmprep.commands.render",
        "Render a spec into image files: unattend.xml, the agent, ...",
    ),
    "init": ("vmprep.commands.init", "Write a commented starter spec."),
    "plan": ("vmprep.commands.plan", "Show what a new instance will do at first boot."),
    "sysprep": ("vmprep.commands.sysprep", "Check this reference VM, then generalize it."),
    "wheelhouse": (
        "vmprep.commands.wheelhouse",
        "Write vmprep and its dependencies as wheels, for offline installs.",
    ),
}


_COLOR_FLAGS = ("--color", "--no-color")
# The group's verbosity flags, accepted after the subcommand too (`vmprep render -q ...`).
_VERBOSITY = re.compile(r"-(v+|q)|--verbose|--quiet")


def color_choice(flag: bool | None) -> bool | None:
    """--color/--no-color, else NO_COLOR (https://no-color.org: set and not empty), else auto."""
    if flag is None and os.environ.get("NO_COLOR"):
        return False
    return flag


class VmprepGroup(click.Group):
    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        """`--color`/`--no-color` are the group's, but accepted after the subcommand too."""
        end = args.index("--") if "--" in args else len(args)

        def group_flag(arg: str) -> bool:
            return arg in _COLOR_FLAGS or _VERBOSITY.fullmatch(arg) is not None

        flags = [a for a in args[:end] if group_flag(a)]
        rest = [a for a in args[:end] if not group_flag(a)] + args[end:]
        return super().parse_args(ctx, flags + rest)

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        entry = COMMANDS.get(cmd_name)
        if entry is None:
            return None
        module = importlib.import_module(entry[0])
        command: click.Command = getattr(module, cmd_name)
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, COMMANDS[name][1]) for name in self.list_commands(ctx)]
        with formatter.section("Commands"):
            formatter.write_dl(rows)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except VmprepError as exc:
            _print_error(ctx, exc)
            ctx.exit(exc.exit_code)
        except KeyboardInterrupt:
            click.echo("interrupted", err=True)
            ctx.exit(ExitCode.INTERRUPTED)
        except (click.exceptions.Exit, click.ClickException, click.Abort):
            raise
        except Exception:
            if ctx.obj is not None and ctx.obj.get("debug"):
                raise
            import traceback

            click.echo(
                "error: internal error in vmprep; please report this with the output of `--debug`.",
                err=True,
            )
            click.echo(traceback.format_exc().strip().splitlines()[-1], err=True)
            ctx.exit(ExitCode.INTERNAL)


def _print_error(ctx: click.Context, exc: VmprepError) -> None:
    # Plain click.echo: an error path should not pay for rich, and messages may hold markup.
    # Each line made printable: a path or value in the message cannot drive the terminal.
    from vmprep.problems import printable

    text = "\n".join(printable(line) for line in str(exc).split("\n"))
    problems = getattr(exc, "problems", None)
    # Problem lines (`file:line:col: error: ... (code)`) carry their severity already.
    prefix = "" if problems and text.startswith(str(problems[0])) else "error: "
    click.echo(f"{prefix}{text}", err=True)
    if exc.hint:
        click.echo(f"  hint: {printable(exc.hint)}", err=True)


@click.group(cls=VmprepGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="vmprep")
@click.option("--debug", is_flag=True, help="Show tracebacks for internal errors.")
@click.option("--color/--no-color", default=None, help="Force or disable colour (default: auto).")
@click.option("-v", "--verbose", count=True, help="Say more (what each step did; repeatable).")
@click.option("-q", "--quiet", is_flag=True, help="Only problems and errors, no progress lines.")
@click.pass_context
def main(ctx: click.Context, debug: bool, color: bool | None, verbose: int, quiet: bool) -> None:
    """Make Windows images configure themselves.

    Validate a customization spec, render unattend.xml, SetupComplete.cmd and the
    first-boot agent into an image, run Sysprep, and serve instance configuration.
    """
    color = color_choice(color)
    ctx.color = color
    if quiet and verbose:
        raise click.UsageError("-q and -v contradict each other")
    level = -1 if quiet else verbose
    # The consoles live with the rest of the output (imported here: `--help` needs none).
    from vmprep.commands.reporters import Output

    ctx.obj = {
        "debug": debug,
        "color": color,
        "output": Output(color=color, verbosity=level),
        "verbosity": level,
    }
