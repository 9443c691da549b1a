"""-q and -v (issue 12): quiet keeps problems and errors only, verbose says more; both are
accepted before or after the subcommand."""

from __future__ import annotations

from click.testing import CliRunner

from tests.conftest import EXAMPLES
from vmprep.cli import main

MINIMAL = str(EXAMPLES / "minimal.yaml")
ENV = {"VMPREP_ADMIN_PASSWORD": "Example-only-1"}


def run(*args: str, expect: int = 0):
    result = CliRunner().invoke(main, list(args), env=ENV, catch_exceptions=False)
    assert result.exit_code == expect, result.output
    return result


def test_validate_quiet_drops_the_summary_and_keeps_problems(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("version: 1\nimage: {name: x, os: windows-9}\n")
    assert run("validate", MINIMAL).stderr.endswith("checked: no problems\n")
    assert run("validate", MINIMAL, "-q").stderr == ""
    quiet = run("-q", "validate", str(bad), expect=1)
    assert "error" in quiet.stdout
    assert quiet.stderr == ""


def test_validate_verbose_names_every_file(tmp_path):
    result = run("validate", "-v", MINIMAL, str(EXAMPLES / "web-role.yaml"))
    assert f"checked {MINIMAL}: no problems" in result.stderr


def test_render_quiet_and_verbose(tmp_path):
    quiet = run("render", MINIMAL, "-o", str(tmp_path / "a"), "-q")
    assert quiet.stderr == ""
    loud = run("-v", "render", MINIMAL, "-o", str(tmp_path / "b"))
    assert "rendered" in loud.stderr
    assert "C:\\Windows\\Setup\\Scripts\\SetupComplete.cmd (" in loud.stderr


def test_quiet_and_verbose_together_is_a_usage_error():
    assert run("-q", "-v", "validate", MINIMAL, expect=2).exit_code == 2
