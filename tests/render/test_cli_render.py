from __future__ import annotations

import dataclasses
import hashlib
import json
import stat
from pathlib import Path

import pytest

from tests.conftest import EXAMPLES
from tests.render.conftest import SPECS
from vmprep.render import render, write_tree
from vmprep.spec import load_spec

FULL = str(SPECS / "full.yaml")
FILES = [
    "ProgramData/vmprep/agent.json",
    "ProgramData/vmprep/agent.pyz",
    "Windows/Panther/unattend.xml",
    "Windows/Setup/Scripts/SetupComplete.cmd",
]


def tree(out: Path) -> dict[str, bytes]:
    return {p.relative_to(out).as_posix(): p.read_bytes() for p in out.rglob("*") if p.is_file()}


def test_render_writes_the_overlay_and_its_manifest(run_vmprep, env, tmp_path: Path) -> None:
    out = tmp_path / "out"
    run_vmprep("render", FULL, "-o", str(out))
    files = tree(out)
    assert sorted(files) == sorted([*FILES, "manifest.json"])
    manifest = json.loads(files["manifest.json"])
    assert manifest["spec"] == {
        "name": "full.yaml",
        "sha256": hashlib.sha256(Path(FULL).read_bytes()).hexdigest(),
    }
    assert [f["path"] for f in manifest["files"]] == FILES
    for entry in manifest["files"]:
        data = files[entry["path"]]
        assert entry["sha256"] == hashlib.sha256(data).hexdigest()
        assert entry["size"] == len(data)
        assert entry["target"] == "C:\\" + entry["path"].replace("/", "\\")
    assert stat.S_IMODE(out.stat().st_mode) == 0o700  # it holds passwords
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp dir left


def test_rendering_twice_in_two_places_gives_identical_files(
    run_vmprep, env, tmp_path: Path
) -> None:
    run_vmprep("render", FULL, "-o", str(tmp_path / "a" / "out"))
    run_vmprep("render", FULL, "-o", str(tmp_path / "b" / "elsewhere"))
    assert tree(tmp_path / "a" / "out") == tree(tmp_path / "b" / "elsewhere")


def test_existing_out_is_refused_without_force(run_vmprep, env, tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    result = run_vmprep("render", FULL, "-o", str(out), expect=2)
    assert f"error: {out} already exists" in result.stderr
    assert "--force" in result.stderr
    assert (out / "keep.txt").read_text() == "mine"
    result = run_vmprep("render", FULL, "-o", str(out), "--force", expect=2)
    assert "not a previous vmprep overlay" in result.stderr  # --force replaces only overlays
    assert (out / "keep.txt").read_text() == "mine"
    (out / "keep.txt").unlink()
    run_vmprep("render", FULL, "-o", str(out), "--force")
    run_vmprep("render", FULL, "-o", str(out), "--force")  # a previous overlay: replaced
    assert sorted(tree(out)) == sorted([*FILES, "manifest.json"])
    assert not [p for p in tmp_path.iterdir() if p.name != "out"]


@pytest.mark.parametrize("up", [0, 1, 2])
def test_force_never_deletes_the_spec_its_directory_or_a_parent(
    run_vmprep, env, tmp_path: Path, up: int
) -> None:
    import shutil

    home = tmp_path / "a" / "b" / "c"
    shutil.copytree(SPECS, home)  # with the files its {file:} references read
    spec = home / "full.yaml"
    (home / "manifest.json").write_text('{"format": 1, "vmprep_version": "x", "files": []}')
    target = [home, home.parent, home.parent.parent][up]
    result = run_vmprep("render", str(spec), "-o", str(target), "--force", expect=2)
    assert "holds the spec" in result.stderr
    assert spec.exists()


def test_missing_secret_exits_1_naming_the_line_and_writes_nothing(
    run_vmprep, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("VMPREP_ADMIN_PASSWORD", raising=False)
    spec = EXAMPLES / "minimal.yaml"
    line, column = load_spec(spec).position(("setup", "administrator", "password"))
    result = run_vmprep("render", str(spec), "-o", str(tmp_path / "out"), expect=1)
    assert result.stderr.splitlines()[0] == (
        f"{spec}:{line}:{column}: error: {{env: VMPREP_ADMIN_PASSWORD}}: "
        "the environment variable VMPREP_ADMIN_PASSWORD is not set (secret)"
    )
    assert "Traceback" not in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_invalid_spec_exits_1(run_vmprep, tmp_path: Path) -> None:
    spec = tmp_path / "bad.yaml"
    spec.write_text("version: 1\nimage: {name: x, os: windows-7}\n")
    result = run_vmprep("render", str(spec), "-o", str(tmp_path / "out"), expect=1)
    assert f"{spec}:2:" in result.stderr
    assert not (tmp_path / "out").exists()


def test_out_is_required_unless_explaining(run_vmprep, env) -> None:
    result = run_vmprep("render", FULL, expect=2)
    assert "-o OUT" in result.stderr


def test_output_is_spelled_like_keygen_and_publish(run_vmprep, env, tmp_path: Path) -> None:
    # keygen and publish take `-o/--output`; `render --output` was "no such option".
    out = tmp_path / "out"
    run_vmprep("render", FULL, "--output", str(out))
    assert (out / "manifest.json").is_file()


def test_python_option_overrides_the_spec(run_vmprep, env, tmp_path: Path) -> None:
    out = tmp_path / "out"
    run_vmprep("render", FULL, "-o", str(out), "--python", "D:\\Py\\python.exe")
    cmd = (out / "Windows/Setup/Scripts/SetupComplete.cmd").read_bytes()
    assert b'"D:\\Py\\python.exe" -I ' in cmd


def test_chain_option_calls_the_script_first(run_vmprep, env, tmp_path: Path) -> None:
    out = tmp_path / "out"
    chained = "C:\\Windows\\Setup\\Scripts\\SetupComplete.vmprep-chained.cmd"
    run_vmprep("render", FULL, "-o", str(out), "--chain-setupcomplete", chained)
    assert chained.encode() in (out / "Windows/Setup/Scripts/SetupComplete.cmd").read_bytes()


def test_explain_shows_where_each_setting_comes_from_and_writes_nothing(
    run_vmprep, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("VMPREP_TEST_ADMIN", raising=False)  # explain resolves no secret
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("COLUMNS", "250")  # one table row per line
    result = run_vmprep("--no-color", "render", "--explain", FULL)
    text = " ".join(result.stdout.split())
    assert "C:\\Windows\\Panther\\unattend.xml" in text
    assert "ComputerName" in text
    line, column = load_spec(Path(FULL)).position(("setup", "computer_name"))
    assert f"{line}:{column} setup.computer_name" in text
    assert "encoded {env: VMPREP_TEST_ADMIN}" in text
    assert "default agent.log_level" in text
    assert list(tmp_path.iterdir()) == []


def test_write_tree_leaves_nothing_when_writing_fails(env, tmp_path: Path) -> None:
    result = render(load_spec(Path(FULL)))
    broken = dataclasses.replace(result, files={**result.files, "bad/\0name": b""})
    with pytest.raises(ValueError, match="null"):
        write_tree(broken, tmp_path / "out")
    assert list(tmp_path.iterdir()) == []


def test_out_under_a_file_is_a_clean_error(run_vmprep, env, tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    result = run_vmprep("render", FULL, "-o", str(tmp_path / "file" / "out"), expect=2)
    assert result.stderr.startswith(f"error: cannot create {tmp_path / 'file' / 'out'}: ")


def test_force_does_not_replace_a_file(run_vmprep, env, tmp_path: Path) -> None:
    (tmp_path / "out").write_text("x")
    result = run_vmprep("render", FULL, "-o", str(tmp_path / "out"), "--force", expect=2)
    assert "exists and is not a directory" in result.stderr
    assert (tmp_path / "out").read_text() == "x"
