"""Render with a bundled runtime: the embeddable CPython under `<install_dir>\\python`."""

from __future__ import annotations

import hashlib
import json
import zipfile
from pathlib import Path

import pytest

from tests.render.conftest import ENV, base_doc, spec_from
from vmprep.render import RenderError, render
from vmprep.render.explain import explain

RUNTIME = "ProgramData/vmprep/python"
PYTHON = "C:\\ProgramData\\vmprep\\python\\python.exe"
PTH = (
    b"# Written by `vmprep render`: the agent's interpreter sees only these paths\r\n"
    b"# (no site, no PYTHONPATH, no registry). Render again instead of editing.\r\n"
    b"python313.zip\r\n.\r\n..\\agent.pyz\r\n"
)


def bundled_doc(zip_name: str, sha: str, **agent: object) -> dict:
    doc = base_doc()
    doc["agent"] = {"runtime": {"embedded": {"zip": zip_name, "sha256": sha}}, **agent}
    return doc


@pytest.fixture
def beside(tmp_path: Path, embed_zip) -> tuple[str, str]:
    """The zip copied next to the spec, named as the spec names it."""
    path, sha = embed_zip
    (tmp_path / path.name).write_bytes(path.read_bytes())
    return path.name, sha


@pytest.mark.slow
def test_the_runtime_is_unpacked_under_the_install_dir(tmp_path, beside, embed_files):
    result = render(spec_from(tmp_path, bundled_doc(*beside)), environ=ENV)
    runtime = {p.removeprefix(RUNTIME + "/"): d for p, d in result.files.items() if RUNTIME in p}
    assert sorted(runtime) == sorted(embed_files)
    assert runtime["python313._pth"] == PTH
    assert {n: d for n, d in runtime.items() if n != "python313._pth"} == {
        n: d for n, d in embed_files.items() if n != "python313._pth"
    }
    setupcomplete = result.files["Windows/Setup/Scripts/SetupComplete.cmd"].decode()
    assert f'"{PYTHON}" -I -S "C:\\ProgramData\\vmprep\\agent.pyz" launch' in setupcomplete
    agent_json = json.loads(result.files["ProgramData/vmprep/agent.json"])
    assert agent_json["runtime"] == {"python": PYTHON, "bundled": True}


def test_the_manifest_lists_every_runtime_file_with_its_hash(tmp_path, beside):
    result = render(spec_from(tmp_path, bundled_doc(*beside)), environ=ENV)
    listed = {f["path"]: f for f in result.manifest["files"]}
    assert set(listed) == set(result.files)
    for path, data in result.files.items():
        assert listed[path]["sha256"] == hashlib.sha256(data).hexdigest()
        assert listed[path]["size"] == len(data)
    assert listed[f"{RUNTIME}/python.exe"]["target"] == PYTHON
    zip_name, sha = beside
    size = sum(len(d) for p, d in result.files.items() if p.startswith(RUNTIME))
    assert result.manifest["runtime"] == {
        "kind": "embedded",
        "python": PYTHON,
        "version": "3.13.2",
        "architecture": "amd64",
        "zip": {"name": zip_name, "sha256": sha, "size": (tmp_path / zip_name).stat().st_size},
        "files": 34,
        "size": size,
    }


def test_rendering_a_bundled_runtime_twice_gives_the_same_bytes(run_vmprep, env, tmp_path, beside):
    spec = spec_from(tmp_path, bundled_doc(*beside))
    outs = [tmp_path / "a", tmp_path / "b" / "deeper"]
    for out in outs:
        result = run_vmprep("render", str(spec.path), "-o", str(out))
    trees = [
        {p.relative_to(out).as_posix(): p.read_bytes() for p in out.rglob("*") if p.is_file()}
        for out in outs
    ]
    assert trees[0] == trees[1]
    assert len(trees[0]) == 34 + 5
    total = sum(len(d) for n, d in trees[0].items() if n != "manifest.json")
    runtime = sum(len(d) for n, d in trees[0].items() if n.startswith(RUNTIME))
    assert result.stderr.splitlines()[1:] == [
        f"  38 files, {total / 1e6:.1f} MB",
        (
            f"  bundled runtime CPython 3.13.2 amd64: 34 files, {runtime / 1e6:.1f} MB unpacked "
            f"(from {beside[0]}, {(tmp_path / beside[0]).stat().st_size / 1e6:.1f} MB)"
        ),
    ]


def test_a_changed_zip_is_refused_and_nothing_is_written(run_vmprep, env, tmp_path, beside):
    zip_name, sha = beside
    spec = spec_from(tmp_path, bundled_doc(zip_name, sha))
    zip_file = tmp_path / zip_name
    with zipfile.ZipFile(zip_file, "a") as archive:
        archive.writestr("extra.dll", b"MZ")
    out = tmp_path / "out"
    result = run_vmprep("render", str(spec.path), "-o", str(out), expect=1)
    actual = hashlib.sha256(zip_file.read_bytes()).hexdigest()
    assert f"has sha256 {actual}, but the spec pins {sha}" in result.stderr
    assert not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == [zip_name, "spec.yaml"]


def test_a_zip_that_is_missing_at_render_is_an_error_on_its_line(tmp_path):
    spec = spec_from(tmp_path, bundled_doc("later.zip", "a" * 64))
    with pytest.raises(RenderError) as caught:
        render(spec, environ=ENV)
    (p,) = caught.value.problems
    assert p.code == "embedded-runtime"
    assert p.path == ("agent", "runtime", "embedded", "zip")
    assert p.message == f"{tmp_path / 'later.zip'} does not exist (or is not a file)"


def test_the_command_line_zip_overrides_the_spec_runtime(run_vmprep, env, tmp_path, embed_zip):
    zip_file, sha = embed_zip
    doc = base_doc()
    doc["agent"] = {"runtime": {"python": "C:\\Python312\\python.exe"}}
    spec = spec_from(tmp_path, doc)
    out = tmp_path / "out"
    args = ["render", str(spec.path), "-o", str(out), "--embedded-python", str(zip_file)]
    run_vmprep(*args, "--embedded-sha256", sha.upper())
    assert (out / RUNTIME / "python.exe").is_file()
    assert PYTHON.encode() in (out / "Windows/Setup/Scripts/SetupComplete.cmd").read_bytes()
    wrong = run_vmprep(*args, "--force", "--embedded-sha256", "0" * 64, expect=1)
    assert f"--embedded-python {zip_file}" not in wrong.stderr  # the file is named once
    assert f"{zip_file} has sha256 {sha}, but the spec pins {'0' * 64}" in wrong.stderr


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--embedded-python", "x.zip"], "--embedded-python needs --embedded-sha256 HEX"),
        (["--embedded-python", "x.zip", "--embedded-sha256", "abc"], "needs --embedded-sha256"),
        (["--embedded-sha256", "a" * 64], "--embedded-sha256 without --embedded-python ZIP"),
        (
            ["--embedded-python", "x.zip", "--embedded-sha256", "a" * 64, "--python", "C:\\p.exe"],
            "--python and --embedded-python both name the runtime",
        ),
    ],
)
def test_runtime_options_that_do_not_fit_together(run_vmprep, env, tmp_path, extra, message):
    spec = spec_from(tmp_path, base_doc())
    result = run_vmprep("render", str(spec.path), "-o", str(tmp_path / "o"), *extra, expect=2)
    assert message in result.stderr


def test_the_python_option_replaces_a_bundled_runtime(tmp_path, beside):
    result = render(
        spec_from(tmp_path, bundled_doc(*beside)), "C:\\Python312\\python.exe", environ=ENV
    )
    assert not [p for p in result.files if RUNTIME in p]
    assert result.manifest["runtime"] == {
        "kind": "installed",
        "python": "C:\\Python312\\python.exe",
    }


def test_an_architecture_mismatch_is_refused_by_render_too(tmp_path, embed_zip):
    zip_file, sha = embed_zip
    doc = base_doc()
    doc["image"] = {**doc["image"], "os": "windows-server-2025", "architecture": "arm64"}
    spec = spec_from(tmp_path, doc)
    with pytest.raises(RenderError) as caught:
        render(spec, environ=ENV, embedded=(zip_file, sha))
    (p,) = caught.value.problems
    assert p.message == (
        f"--embedded-python {zip_file} is CPython 3.13.2 amd64 (python.exe's PE header), "
        "but image.architecture is arm64"
    )


def test_a_long_install_dir_leaves_no_room_for_the_interpreter(tmp_path, beside):
    install_dir = "C:\\" + "d" * 230
    doc = base_doc()  # an interpreter on the image: validate has no bundled path to check
    doc["agent"]["install_dir"] = install_dir
    spec = spec_from(tmp_path, doc)
    with pytest.raises(RenderError) as caught:
        render(spec, environ=ENV, embedded=(tmp_path / beside[0], beside[1]))
    assert [p.code for p in caught.value.problems] == ["runtime"]
    assert "is longer than 240 characters" in caught.value.problems[0].message


def test_explain_shows_the_runtime_and_its_size(tmp_path, beside):
    spec = spec_from(tmp_path, bundled_doc(*beside))
    rows = explain(spec, render(spec, placeholders=True))
    interpreter = next(r for r in rows if r.what == "interpreter")
    assert (interpreter.value, interpreter.source) == (PYTHON, "10:5 agent.runtime.embedded")
    row = next(r for r in rows if r.what == "bundled runtime")
    assert row.target == "C:\\ProgramData\\vmprep\\python"
    assert row.value.startswith("CPython 3.13.2 amd64: 34 files, ")
    assert row.value.endswith(f"MB unpacked (from {beside[0]}, 10.9 MB)")
