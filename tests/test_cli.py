from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import EXAMPLES, ROOT

MINIMAL = EXAMPLES / "minimal.yaml"
PATHS = EXAMPLES / "invalid" / "paths.yaml"


def test_help_lists_commands(run_vmprep):
    result = run_vmprep("--help")
    for name in ("validate", "schema", "init"):
        assert f"  {name} " in result.stdout


def test_schema_prints_the_packaged_schema(run_vmprep):
    result = run_vmprep("schema")
    assert json.loads(result.stdout)["title"].startswith("vmprep customization spec")


def test_schema_prints_one_definition_standalone(run_vmprep):
    from jsonschema import Draft202012Validator

    doc = json.loads(run_vmprep("schema", "--definition", "roleConfig").stdout)
    assert doc["$ref"] == "#/$defs/roleConfig"
    assert Draft202012Validator(doc).is_valid({"version": 1, "kind": "RoleConfig", "role": "web"})
    result = run_vmprep("schema", "--definition", "nope", expect=2)
    assert "no definition 'nope'" in result.stderr


def _unaccepted_minimal(tmp_path: Path) -> Path:
    """examples/minimal.yaml without its accept comment (the warning it accepts)."""
    lines = MINIMAL.read_text(encoding="utf-8").splitlines(keepends=True)
    spec = tmp_path / "minimal.yaml"
    spec.write_text("".join(x for x in lines if "vmprep: accept" not in x), encoding="utf-8")
    return spec


def test_validate_minimal_example_warns_only_about_the_baked_password(run_vmprep, tmp_path):
    spec = _unaccepted_minimal(tmp_path)
    result = run_vmprep("validate", str(spec))
    assert result.stdout.splitlines()[0] == (
        f"{spec}:9:15: warning: the administrator password will be stored in "
        "C:\\Windows\\Panther\\unattend.xml inside the image (Base64, not encrypted) "
        "(secret-in-image)"
    )
    assert result.stdout.splitlines()[1].startswith("  hint: the agent deletes the answer file")
    assert result.stderr == "1 file checked: 1 warning\n"


def test_strict_turns_warnings_into_errors(run_vmprep, tmp_path):
    spec = _unaccepted_minimal(tmp_path)
    result = run_vmprep("validate", "--strict", str(spec), expect=1)
    assert f"{spec}:9:15: error: the administrator password" in result.stdout


def test_strict_passes_the_examples_whose_known_warning_is_accepted(run_vmprep):
    result = run_vmprep("validate", "--strict", *map(str, sorted(EXAMPLES.glob("*.yaml"))))
    assert result.stdout == ""
    assert "no problems" in result.stderr


def test_warn_only_and_ignore_control_one_code(run_vmprep, tmp_path):
    spec = _unaccepted_minimal(tmp_path)
    soft = run_vmprep("validate", "--strict", "--warn-only", "secret-in-image", str(spec))
    assert ":9:15: warning:" in soft.stdout
    quiet = run_vmprep("validate", "--strict", "--ignore", "secret-in-image", str(spec))
    assert quiet.stdout == ""
    run_vmprep("validate", "--strict", "--ignore", "other-code", str(spec), expect=1)


def test_an_accept_comment_covers_its_line_or_the_next_and_needs_a_reason(run_vmprep, tmp_path):
    base = _unaccepted_minimal(tmp_path).read_text(encoding="utf-8")
    line = "    password: {env: VMPREP_ADMIN_PASSWORD}"
    trailing = tmp_path / "trailing.yaml"
    trailing.write_text(base.replace(line, line + "  # vmprep: accept secret-in-image -- why"))
    run_vmprep("validate", "--strict", str(trailing))
    elsewhere = tmp_path / "elsewhere.yaml"  # on another line: covers nothing there
    elsewhere.write_text("# vmprep: accept secret-in-image -- why\n" + base)
    run_vmprep("validate", "--strict", str(elsewhere), expect=1)
    bare = tmp_path / "bare.yaml"
    bare.write_text(base.replace(line, "    # vmprep: accept secret-in-image\n" + line))
    result = run_vmprep("validate", str(bare))
    assert "(accept-reason)" in result.stdout
    assert "(secret-in-image)" in result.stdout


def test_validate_reads_standard_input(tmp_path):
    from click.testing import CliRunner

    from vmprep import cli

    text = _unaccepted_minimal(tmp_path).read_bytes()
    result = CliRunner().invoke(cli.main, ["validate", "-"], input=text)
    assert result.exit_code == 0, result.stderr
    assert result.stdout.startswith("<stdin>:9:15: warning:")
    assert result.stderr == "1 file checked: 1 warning\n"


def test_the_pre_commit_hooks_check_specs_not_every_yaml_file():
    import re

    import yaml

    hooks = yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text(encoding="utf-8"))
    for hook in hooks:
        assert "types" not in hook

        def checked(path: str, hook: dict[str, str] = hook) -> bool:
            excluded = re.search(hook["exclude"], path)
            return bool(re.search(hook["files"], path)) and not excluded

        for path in ("vmprep.yaml", "images/web.yaml", "configs/roles/web.yml", "a/b.vmprep.yml"):
            assert checked(path), (hook["id"], path)
        for path in (".github/workflows/ci.yml", "docker-compose.yaml", ".github/images/x.yaml"):
            assert not checked(path), (hook["id"], path)


def test_validate_reports_every_problem_sorted_with_hints(run_vmprep):
    result = run_vmprep("validate", str(PATHS), expect=1)
    assert result.stdout.splitlines() == [
        (
            f"{PATHS}:9:16: error: 'C:\\ProgramData\\vmprep & co' contains '&', which cmd.exe "
            "treats specially (cmd-unsafe-path)"
        ),
        "  hint: SetupComplete.cmd launches the agent from this path",
        (
            f"{PATHS}:13:14: error: download url 'http://download.example.com/tools.msi' is not "
            "https (download)"
        ),
        "  hint: serve it over https; the sha256 check alone does not keep it private",
        (
            f"{PATHS}:15:13: error: 'Tools\\tools.msi' is not an absolute Windows path: it must "
            "be on a drive, like 'C:\\dir\\file' (windows-path)"
        ),
    ]
    assert result.stderr == "1 file checked: 3 errors\n"


def test_validate_reports_schema_problem_with_position(run_vmprep, tmp_path):
    spec = tmp_path / "bad.yaml"
    spec.write_text("version: 1\nimage:\n  name: x\n  os: windows-7\n")
    result = run_vmprep("validate", str(spec), expect=1)
    assert result.stdout.startswith(f"{spec}:4:7: error: image.os: 'windows-7' is not one of")


def test_json_format_is_one_document(run_vmprep, tmp_path):
    minimal = _unaccepted_minimal(tmp_path)
    result = run_vmprep("validate", "--format", "json", str(PATHS), str(minimal), expect=1)
    doc = json.loads(result.stdout)
    assert (doc["files"], doc["errors"], doc["warnings"]) == (2, 3, 1)
    # sorted by file name: which comes first depends on where the checkout and /tmp are
    assert [p["file"] for p in doc["problems"]] == sorted([str(minimal)] + [str(PATHS)] * 3)
    first = next(p for p in doc["problems"] if p["file"] == str(minimal))
    assert first == {
        "file": str(minimal),
        "line": 9,
        "column": 15,
        "severity": "warning",
        "code": "secret-in-image",
        "message": first["message"],
        "path": "$.setup.administrator.password",
        "hint": first["hint"],
    }
    assert result.stderr == ""


def test_github_format_is_workflow_annotations(run_vmprep):
    result = run_vmprep("validate", "--format", "github", str(PATHS), expect=1)
    lines = result.stdout.splitlines()
    assert len(lines) == 3
    assert lines[0].startswith(
        f"::error file={PATHS},line=9,col=16,title=vmprep (cmd-unsafe-path)::'C:\\ProgramData"
    )
    assert lines[0].endswith("%0Ahint: SetupComplete.cmd launches the agent from this path")


def test_directories_are_searched_recursively_and_globs_expanded(run_vmprep, tmp_path):
    (tmp_path / "a" / "b").mkdir(parents=True)
    (tmp_path / ".git").mkdir()
    good = (
        "version: 1\nimage: {name: x, os: windows-11}\nsetup: {accounts: [{name: ops, groups: [Administrators]}]}\n"
        "agent: {runtime: {python: 'C:\\Python312\\python.exe'}}\n"
    )
    (tmp_path / "a" / "one.yaml").write_text(good)
    (tmp_path / "a" / "b" / "two.yml").write_text(good)
    (tmp_path / "a" / "notes.txt").write_text("not yaml: [")
    (tmp_path / ".git" / "hidden.yaml").write_text("not yaml: [")
    assert run_vmprep("validate", str(tmp_path)).stderr == "2 files checked: no problems\n"
    pattern = str(tmp_path / "**" / "*.y*ml")
    assert run_vmprep("validate", pattern).stderr == "2 files checked: no problems\n"


@pytest.mark.parametrize(
    ("arg", "message"),
    [("missing.yaml", "no such file or directory"), ("nothing-*.yaml", "no files match")],
)
def test_paths_that_name_nothing_are_usage_errors(run_vmprep, tmp_path, arg, message):
    result = run_vmprep("validate", str(tmp_path / arg), expect=2)
    assert message in result.stderr


def test_an_empty_directory_is_a_usage_error(run_vmprep, tmp_path):
    result = run_vmprep("validate", str(tmp_path), expect=2)
    assert "no .yaml or .yml files" in result.stderr


def test_broken_files_are_problems_not_crashes(run_vmprep, tmp_path):
    (tmp_path / "latin1.yaml").write_bytes(b"version: 1\nimage: {name: caf\xe9}\n")
    (tmp_path / "tab.yaml").write_bytes(b"a:\n\t- b\n")
    result = run_vmprep("validate", str(tmp_path), expect=1)
    assert f"{tmp_path / 'latin1.yaml'}:2:18: error: the file is not UTF-8" in result.stdout
    assert f"{tmp_path / 'tab.yaml'}:2:1: error: invalid YAML" in result.stdout


def test_a_config_repository_file_is_validated_as_one(run_vmprep, tmp_path):
    role = tmp_path / "web.yaml"
    role.write_text("version: 1\nkind: RoleConfig\nrole: web\nsteps: [{id: a, reboot: {}}]\n")
    run_vmprep("validate", str(role))
    role.write_text("version: 1\nkind: RoleConfig\nrole: web\nimage: {name: x}\n")
    result = run_vmprep("validate", str(role), expect=1)
    assert "unknown key 'image'" in result.stdout


def test_init_writes_a_starter_that_validates_cleanly(run_vmprep, tmp_path):
    spec = tmp_path / "vmprep.yaml"
    result = run_vmprep("init", str(spec))
    assert "wrote" in result.stderr
    assert "# yaml-language-server: $schema=" in spec.read_text()
    # The one warning is the administrator password OOBE needs (oobe-account).
    result = run_vmprep("validate", str(spec))
    assert "(secret-in-image)" in result.stdout
    assert result.stderr == "1 file checked: 1 warning\n"
    assert "already exists" in run_vmprep("init", str(spec), expect=2).stderr
    spec.write_text("changed")
    run_vmprep("init", "--force", str(spec))
    assert spec.read_text().startswith("# yaml-language-server")
    assert list(tmp_path.iterdir()) == [spec]  # no temporary file left behind
    nested = tmp_path / "images" / "web" / "x.yaml"
    run_vmprep("init", str(nested))  # the parent directories are made
    assert nested.read_text().startswith("# yaml-language-server")
    (tmp_path / "file").write_text("")
    assert (
        "not a directory" in run_vmprep("init", str(tmp_path / "file" / "x.yaml"), expect=2).stderr
    )


def test_validate_in_a_real_process_loads_neither_rich_nor_the_server():
    code = (
        "import sys\nfrom vmprep.cli import main\n"
        f"try: main(['validate', {str(MINIMAL)!r}])\nexcept SystemExit as e: rc = e.code\n"
        "print(rc, sorted(m for m in ('rich', 'starlette', 'cryptography') if m in sys.modules))"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True
    )
    assert out.stdout.splitlines()[-1] == "0 []"


def test_a_reader_that_stops_early_is_not_an_internal_error(tmp_path):
    for i in range(400):  # more output than a pipe buffers, so the writer meets a closed pipe
        (tmp_path / f"s{i}.yaml").write_text(
            "version: 1\nimage: {name: t}\nsetup: {timezone: CET}\n"
        )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    argv = [sys.executable, "-m", "vmprep", "validate", str(tmp_path)]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    assert proc.stdout is not None
    assert proc.stdout.readline().startswith(str(tmp_path).encode())
    proc.stdout.close()  # like `| head -1`
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 1
    assert b"internal error" not in stderr


@pytest.mark.skipif(os.name != "posix", reason="POSIX permission bits")
def test_init_writes_a_spec_with_the_usual_permissions(run_vmprep, tmp_path):
    # A spec holds references, not secrets, and goes into git: mode 0666 minus the umask
    # (a temporary file's 0600 would surprise a team sharing the checkout), and --force
    # keeps the mode the file already had.
    old = os.umask(0o022)
    try:
        spec = tmp_path / "vmprep.yaml"
        run_vmprep("init", str(spec))
        assert stat.S_IMODE(spec.stat().st_mode) == 0o644
        spec.chmod(0o640)
        run_vmprep("init", "--force", str(spec))
        assert stat.S_IMODE(spec.stat().st_mode) == 0o640
    finally:
        os.umask(old)


def test_an_error_made_of_problem_lines_is_printed_without_a_second_prefix(
    run_vmprep, tmp_path, monkeypatch
):
    # `file:line:col: error: message (code)` is the one problem format (editors and CI parse
    # it); `error: ` in front of it made every render/sysprep spec error start "error: ...
    # error:".
    monkeypatch.delenv("VMPREP_ADMIN_PASSWORD", raising=False)
    result = run_vmprep("render", str(MINIMAL), "-o", str(tmp_path / "out"), expect=1)
    first = result.stderr.splitlines()[0]
    assert first.startswith(f"{MINIMAL}:")
    assert first.count("error:") == 1
    bad = tmp_path / "bad.yaml"
    bad.write_text("version: 1\nimage:\n  name: x\n   os: y\n")
    result = run_vmprep("render", str(bad), "-o", str(tmp_path / "out"), expect=1)
    assert result.stderr.startswith(f"{bad}:4:6: error: invalid YAML")
    # Other errors keep their prefix.
    result = run_vmprep("render", str(MINIMAL), expect=2)
    assert result.stderr.startswith("error: missing the output directory")


def test_every_option_of_every_command_says_what_it_does():
    import click

    from vmprep import cli

    ctx = click.Context(cli.main)
    missing = []
    for name in cli.main.list_commands(ctx):
        command = cli.main.get_command(ctx, name)
        assert command is not None, name
        missing += [
            (name, param.opts)
            for param in command.params
            if isinstance(param, click.Option) and not param.help
        ]
    assert missing == []


def test_render_of_an_invalid_spec_shows_every_problem(run_vmprep, tmp_path):
    result = run_vmprep("render", str(PATHS), "-o", str(tmp_path / "out"), expect=1)
    shown = [x for x in result.stderr.splitlines() if x.startswith(f"{PATHS}:")]
    assert len(shown) == 3
    assert "more)" not in result.stderr
    assert not (tmp_path / "out").exists()
