"""The issue's "done when": an overlay rendered with a bundled runtime, laid on a Wine C: drive
that has NO other Python, starts the agent from SetupComplete.cmd and runs to `done`."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest

from tests import embed
from tests.windows.bench import Prefix

BUNDLED = "C:\\ProgramData\\vmprep\\python\\python.exe"


@pytest.fixture(scope="module")
def official_zip(tmp_path_factory) -> tuple[Path, str]:
    import hashlib

    data = embed.build_zip(embed.official_files())
    path = tmp_path_factory.mktemp("zip") / f"python-{embed.VERSION}-embed-amd64.zip"
    path.write_bytes(data)
    return path, hashlib.sha256(data).hexdigest()


def spec_text(zip_file: Path, sha256: str) -> str:
    return f"""\
version: 1
image: {{name: bundled, os: windows-server-2022}}
setup: {{administrator: {{password: {{env: VMPREP_ADMIN_PASSWORD}}}}}}
agent:
  runtime:
    embedded: {{zip: '{zip_file}', sha256: '{sha256}'}}
"""


@pytest.mark.slow
def test_a_bundled_runtime_first_boot_runs_to_done_with_no_other_python(
    prefix: Prefix, official_zip
) -> None:
    r = prefix.render(spec_text(*official_zip), python=False)
    assert r.python == BUNDLED
    assert r.agent_json["runtime"] == {"python": BUNDLED, "bundled": True}
    drive = prefix.host("C:\\")
    found = sorted(p.relative_to(drive).as_posix() for p in drive.rglob("python*.exe"))
    assert found == [
        "ProgramData/vmprep/python/python.exe",
        "ProgramData/vmprep/python/pythonw.exe",
    ]

    prefix.setupcomplete().check(0)
    log = prefix.read_text(r.install_dir + "\\setupcomplete.log")
    assert "the agent launcher exited with 0" in log, log
    assert prefix.task_command() == f'"{BUNDLED}" -I -S {r.pyz} run --config {r.config}'

    prefix.run_task().check(0)
    status = prefix.agent("status", "--config", r.config, "--format", "json").check(0)
    assert json.loads(status.stdout)["state"] == "done", status.stdout


@pytest.mark.slow
def test_the_rewritten_pth_keeps_the_zipapp_first_and_the_agent_importable(
    prefix: Prefix, official_zip
) -> None:
    """With a `._pth` beside python.exe, `python.exe -I -S app.pyz` still puts the zipapp at
    sys.path[0]; the `._pth`'s own entries follow (and `..\\agent.pyz` makes the agent importable
    without naming it)."""
    r = prefix.render(spec_text(*official_zip), python=False)
    probe = Path(str(prefix.host(r.install_dir))) / "probe.pyz"
    with zipfile.ZipFile(probe, "w") as archive:
        archive.writestr("__main__.py", "import json, sys\nprint(json.dumps(sys.path))\n")
    shown = prefix.wine(BUNDLED, "-I", "-S", f"{r.install_dir}\\probe.pyz").check(0)
    base = "C:\\ProgramData\\vmprep"
    assert json.loads(shown.stdout) == [
        f"{base}\\probe.pyz",
        f"{base}\\python\\python313.zip",
        f"{base}\\python",
        f"{base}\\agent.pyz",
    ]
    code = "import vmprep.agent.cli as m, sys; print(m.__file__); print(sys.flags.isolated)"
    imported = prefix.wine(BUNDLED, "-c", code).check(0)  # no -I: the ._pth isolates anyway
    assert imported.stdout.split() == [f"{base}\\agent.pyz\\vmprep\\agent\\cli.py", "1"]
