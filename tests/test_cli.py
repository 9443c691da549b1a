from __future__ import annotations

import json

from tests.conftest import EXAMPLES


def test_help_lists_commands(run_vmprep):
    result = run_vmprep("--help")
    assert "validate" in result.stdout


def test_schema_prints_the_packaged_schema(run_vmprep):
    result = run_vmprep("schema")
    assert json.loads(result.stdout)["title"].startswith("vmprep customization spec")


def test_validate_minimal_example_warns_only_about_the_baked_password(run_vmprep):
    spec = EXAMPLES / "minimal.yaml"
    result = run_vmprep("validate", str(spec))
    assert result.stdout.splitlines()[0] == (
        f"{spec}:9:15: warning: the administrator password will be stored in "
        "C:\\Windows\\Panther\\unattend.xml inside the image (Base64, not encrypted) "
        "(secret-in-image)"
    )
    assert result.stderr == "1 file checked: 1 warning\n"


def test_validate_reports_schema_problem_with_position(run_vmprep, tmp_path):
    spec = tmp_path / "bad.yaml"
    spec.write_text("version: 1\nimage:\n  name: x\n  os: windows-7\n")
    result = run_vmprep("validate", str(spec), expect=1)
    assert result.stdout.startswith(f"{spec}:4:")
    assert "(schema)" in result.stdout
