"""Terminal output: NO_COLOR, --no-color anywhere, no wrapping when piped, one exit-code rule."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.conftest import ROOT
from vmprep import cli
from vmprep.errors import ExitCode

PATHS = ROOT / "examples" / "invalid" / "paths.yaml"
ANSI = "\x1b["


def _validate(*args: str, env: dict[str, str] | None = None) -> str:
    # color=True: CliRunner then behaves like a terminal, where colour is on by default.
    result = CliRunner().invoke(cli.main, [*args], color=True, env=env, catch_exceptions=False)
    assert result.exit_code == 1, result.stderr
    return result.stdout


def test_a_terminal_gets_colour_by_default():
    assert ANSI in _validate("validate", str(PATHS))


def test_no_color_is_honoured(monkeypatch: pytest.MonkeyPatch):
    assert ANSI not in _validate("validate", str(PATHS), env={"NO_COLOR": "1"})
    assert ANSI in _validate("validate", str(PATHS), env={"NO_COLOR": ""})  # empty: not set


@pytest.mark.parametrize(
    "args",
    [("--no-color", "validate", str(PATHS)), ("validate", str(PATHS), "--no-color")],
    ids=["before", "after"],
)
def test_no_color_before_or_after_the_subcommand(args: tuple[str, ...]):
    assert ANSI not in _validate(*args)


def test_color_flag_wins_over_no_color_env():
    assert ANSI in _validate("validate", "--color", str(PATHS), env={"NO_COLOR": "1"})


def test_piped_rich_output_does_not_wrap_at_80_columns(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("COLUMNS", raising=False)
    from vmprep.commands.reporters import UNWRAPPED, Output

    out = Output()
    assert out.out.width == UNWRAPPED
    from rich.table import Table

    table = Table("path")
    long = "C:\\" + "\\".join(["a-rather-long-directory-name"] * 6) + "\\file.txt"
    table.add_row(long)
    with out.out.capture() as capture:
        out.out.print(table)
    assert long in capture.get()  # one piece: never broken mid-path


def _exit_code_table() -> dict[int, str]:
    text = (ROOT / "docs" / "cli.md").read_text(encoding="utf-8")
    section = text.split("## Exit codes\n", 1)[1].split("\n## ", 1)[0]
    return {int(m[0]): m[1] for m in re.findall(r"^\| (\d+) \| `(\w+)` \|", section, re.MULTILINE)}


def test_the_exit_code_table_is_the_code():
    assert _exit_code_table() == {int(code): code.name for code in ExitCode}


def test_the_same_kind_of_failure_gets_the_same_code(run_vmprep, tmp_path: Path):
    """A path on the command line that names nothing: usage (2), whichever command."""
    missing = tmp_path / "nowhere"
    key = tmp_path / "k"
    run_vmprep("keygen", "-o", str(key))
    usage = ExitCode.USAGE
    run_vmprep("validate", str(missing / "x.yaml"), expect=usage)
    run_vmprep("render", str(missing / "x.yaml"), "-o", str(tmp_path / "o"), expect=usage)
    run_vmprep("keygen", "-o", str(missing / "fleet"), expect=usage)
    run_vmprep("serve", "--configs", str(missing), "--key", f"{key}.pem", expect=usage)
    run_vmprep("serve", "--configs", str(tmp_path), "--key", str(missing), expect=usage)
    run_vmprep("publish", "--configs", str(missing), "--key", f"{key}.pem", "-o", "x", expect=usage)


@pytest.mark.parametrize(
    ("args", "incomplete", "expected"),
    [
        (["schema", "--definition"], "role", "roleConfig"),
        (["sysprep", "--check", "x.yaml", "--skip-check"], "", None),
    ],
)
def test_completion_of_option_values(args: list[str], incomplete: str, expected: str | None):
    from click.shell_completion import ShellComplete

    names = [
        item.value
        for item in ShellComplete(cli.main, {}, "vmprep", "_VMPREP_COMPLETE").get_completions(
            args, incomplete
        )
    ]
    if expected is None:
        from vmprep.sysprep.preflight import check_ids

        assert names == check_ids()
        assert names
    else:
        assert expected in names


def test_render_explain_as_json_matches_the_tables(run_vmprep, monkeypatch: pytest.MonkeyPatch):
    import json

    monkeypatch.setenv("VMPREP_ADMIN_PASSWORD", "Example-only-1")
    spec = str(ROOT / "examples" / "minimal.yaml")
    doc = json.loads(run_vmprep("render", spec, "--explain", "--format", "json").stdout)
    assert (doc["version"], doc["spec"]) == (1, spec)
    files = {row["file"] for row in doc["rows"]}
    assert any(f.endswith("unattend.xml") for f in files)
    assert all(set(row) == {"file", "setting", "value", "source"} for row in doc["rows"])
    tables = run_vmprep("--no-color", "render", spec, "--explain").stdout
    assert all(f in tables for f in files)
    run_vmprep("render", spec, "--format", "json", "-o", "x", expect=ExitCode.USAGE)


def test_every_command_shows_examples_in_its_help(run_vmprep):
    for name in cli.COMMANDS:
        assert "Examples:" in run_vmprep(name, "--help").stdout, name
