"""The flow with the real renderer (vmprep.render) instead of the hand-made overlay."""

from __future__ import annotations

import json

import pytest

import vmprep.render as render_module
from tests.sysprep.conftest import scenario
from vmprep.sysprep.checks import CHAINED_SETUPCOMPLETE, SETUPCOMPLETE
from vmprep.sysprep.generalize import Overlay
from vmprep.sysprep.platform import DirectoryPlatform, windows_path

ANSWER_KEY = "Windows/Panther/unattend.xml"  # render's layout (offline injection)
ANSWER = "Windows/System32/Sysprep/unattend.xml"  # where generalize installs it
SPEC = """\
version: 1
image:
  name: rendered
setup:
  timezone: UTC
  administrator:
    password: {env: VMPREP_ADMIN_PASSWORD}
agent:
  runtime: {python: 'C:\\Program Files\\Python312\\python.exe'}
"""


@pytest.fixture
def real_render(tmp_path, monkeypatch):
    """vmprep.render with a small agent source (the agent is another area's)."""
    agent = tmp_path / "agent-src"
    agent.mkdir()
    (agent / "__init__.py").write_text("")
    (agent / "cli.py").write_text("def main():\n    return 0\n")
    monkeypatch.setenv("VMPREP_ADMIN_PASSWORD", "Secr3t!")
    calls = []

    def renderer(spec, python, chain):
        calls.append(chain)
        result = render_module.render(
            spec, python=python, chain_setupcomplete=chain, agent_dir=agent
        )
        return Overlay(dict(result.files), dict(result.targets))

    monkeypatch.setattr("vmprep.sysprep.generalize.render_overlay", renderer)
    return calls


@pytest.fixture
def rendered_spec(tmp_path):
    path = tmp_path / "rendered.yaml"
    path.write_text(SPEC)
    return path


def test_the_chained_path_is_the_one_render_knows(drive):
    assert windows_path(DirectoryPlatform.load(drive), CHAINED_SETUPCOMPLETE) == (
        render_module.CHAINED_SETUPCOMPLETE
    )


def test_generalize_installs_what_render_made(run_vmprep, drive, rendered_spec, real_render):
    original = drive / SETUPCOMPLETE
    original.parent.mkdir(parents=True)
    original.write_bytes(b"echo from the cloud image\r\n")
    dry = run_vmprep(
        "sysprep",
        "--generalize",
        "--dry-run",
        "--format",
        "json",
        "--root",
        str(drive),
        str(rendered_spec),
    )
    files = json.loads(dry.stdout)["files"]
    planned = {f["path"]: f["target"] for f in files}
    assert {ANSWER_KEY, SETUPCOMPLETE, CHAINED_SETUPCOMPLETE} <= set(planned)
    assert planned[ANSWER_KEY] == "C:\\Windows\\System32\\Sysprep\\unattend.xml"
    run_vmprep("sysprep", "--generalize", "--root", str(drive), str(rendered_spec))
    assert real_render == [render_module.CHAINED_SETUPCOMPLETE] * 2
    unattend = (drive / ANSWER).read_bytes()
    assert b"<unattend" in unattend
    assert (drive / "fake-sysprep-unattend.xml").read_bytes() == unattend
    seen = json.loads((drive / "fake-sysprep-seen.json").read_text())
    assert seen == {"unattend": [str(drive / ANSWER)], "panther_cache_existed": False}
    assert render_module.CHAINED_SETUPCOMPLETE.encode() in original.read_bytes()
    assert (drive / CHAINED_SETUPCOMPLETE).read_bytes() == b"echo from the cloud image\r\n"
    for target in planned.values():
        assert (drive / target.removeprefix("C:\\").replace("\\", "/")).is_file()
    # the agent deletes the installed answer file and Sysprep's cached copy at first boot
    agent_json = next(t for p, t in planned.items() if p.endswith("/agent.json"))
    settings = json.loads((drive / agent_json[3:].replace("\\", "/")).read_text())
    assert set(settings["answer_files"]) >= {
        planned[ANSWER_KEY],
        "C:\\Windows\\Panther\\unattend*.xml",  # Sysprep's cached copy, and any beside it
    }


def test_a_failure_with_real_render_restores_the_drive(
    run_vmprep, drive, rendered_spec, real_render
):
    scenario(drive, "exit")
    run_vmprep("sysprep", "--generalize", "--root", str(drive), str(rendered_spec), expect=4)
    assert not (drive / SETUPCOMPLETE).exists()
    assert not (drive / ANSWER_KEY).exists()
    assert not (drive / ANSWER).exists()
    assert not (drive / "ProgramData/vmprep/agent.pyz").exists()


def test_a_bundled_runtime_needs_no_interpreter_on_the_vm(
    run_vmprep, drive, tmp_path, real_render, embed_zip
):
    """agent.runtime.embedded: the `python` check looks at the pinned zip and the Universal
    CRT instead of an installed Python, and generalize lays the runtime under install_dir."""
    zip_file, sha = embed_zip
    (tmp_path / zip_file.name).write_bytes(zip_file.read_bytes())
    spec = tmp_path / "bundled.yaml"
    runtime = f"runtime: {{embedded: {{zip: {zip_file.name}, sha256: '{sha}'}}}}"
    spec.write_text(
        SPEC.replace("runtime: {python: 'C:\\Program Files\\Python312\\python.exe'}", runtime)
    )
    (drive / "Program Files/Python312/python.exe").unlink()  # no Python on this VM
    checks = ["sysprep", "--check", "--format", "json", "--root", str(drive), str(spec)]
    python = next(
        c for c in json.loads(run_vmprep(*checks, expect=3).stdout)["checks"] if c["id"] == "python"
    )
    assert python["status"] == "fail"
    assert python["reason"] == (
        "the bundled CPython 3.13.2 amd64 needs the Universal CRT, and "
        "C:\\Windows\\System32\\ucrtbase.dll is missing"
    )
    (drive / "Windows/System32/ucrtbase.dll").write_bytes(b"MZ")
    python = next(
        c for c in json.loads(run_vmprep(*checks).stdout)["checks"] if c["id"] == "python"
    )
    assert python == {
        "id": "python",
        "status": "pass",
        "reason": "bundled runtime CPython 3.13.2 amd64 (34 files) goes to "
        "C:\\ProgramData\\vmprep\\python\\python.exe; no interpreter needed on the VM",
        "hint": None,
        "details": [],
    }
    run_vmprep("sysprep", "--generalize", "--root", str(drive), str(spec))
    runtime_dir = drive / "ProgramData/vmprep/python"
    assert (runtime_dir / "python.exe").read_bytes()[:2] == b"MZ"
    assert b"..\\agent.pyz" in (runtime_dir / "python313._pth").read_bytes()
    setupcomplete = (drive / SETUPCOMPLETE).read_bytes()
    assert b'"C:\\ProgramData\\vmprep\\python\\python.exe" -I -S' in setupcomplete
    (tmp_path / zip_file.name).write_bytes(b"changed")  # the spec check reads it first
    assert "but the spec pins" in run_vmprep(*checks, expect=1).stderr
    (tmp_path / zip_file.name).unlink()  # validate leaves a missing zip to render: preflight
    python = next(
        c for c in json.loads(run_vmprep(*checks, expect=3).stdout)["checks"] if c["id"] == "python"
    )
    assert python["reason"].startswith("bundled runtime (agent.runtime.embedded): cannot read ")
