from __future__ import annotations

import io
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.render.conftest import write_fake_agent
from vmprep import __version__
from vmprep.render.payload import PayloadError, build_payload, payload_files


def test_payload_layout(agent_dir: Path) -> None:
    names = sorted(payload_files(agent_dir))
    assert names[:4] == [
        "LICENSES/ecdsa.txt",
        "LICENSES/six.txt",
        "LICENSES/vmprep.txt",
        "__main__.py",
    ]
    assert "vmprep/__init__.py" in names
    assert "vmprep/agent/cli.py" in names
    assert "vmprep/protocol/__init__.py" in names  # the shared core the agent imports
    assert "vmprep/protocol/floor.py" in names
    assert "six.py" in names
    assert "ecdsa/__init__.py" in names
    assert "ecdsa/eddsa.py" in names
    assert not [n for n in names if n.rsplit("/", 1)[-1].startswith("test_")]
    assert not [n for n in names if "__pycache__" in n or "\\" in n]


def test_zip_is_sorted_with_fixed_time_and_mode(agent_dir: Path) -> None:
    archive = zipfile.ZipFile(io.BytesIO(build_payload(agent_dir)))
    infos = archive.infolist()
    assert [i.filename for i in infos] == sorted(i.filename for i in infos)
    for info in infos:
        assert info.date_time == (1980, 1, 1, 0, 0, 0)
        assert info.external_attr >> 16 == 0o100644
        assert info.create_system == 3
        assert info.compress_type == zipfile.ZIP_STORED
    init = archive.read("vmprep/__init__.py").decode()
    assert f'__version__ = "{__version__}"' in init
    assert "import" not in init


def test_payload_is_byte_identical_across_builds_and_source_locations(tmp_path: Path) -> None:
    one = write_fake_agent(tmp_path / "one" / "agent")
    two = write_fake_agent(tmp_path / "elsewhere" / "deeper" / "agent")
    (two / "__pycache__").mkdir()
    (two / "__pycache__" / "cli.cpython-311.pyc").write_bytes(b"junk")
    assert build_payload(one) == build_payload(one) == build_payload(two)


def test_subpackages_are_included_with_posix_names(tmp_path: Path) -> None:
    agent = write_fake_agent(tmp_path / "agent")
    (agent / "steps").mkdir()
    (agent / "steps" / "__init__.py").write_bytes(b"")
    (agent / "steps" / "run.py").write_bytes(b"X = 1\r\n")  # bytes copied as they are
    files = payload_files(agent)
    assert files["vmprep/agent/steps/run.py"] == b"X = 1\r\n"


def test_a_missing_agent_is_a_packaging_error(tmp_path: Path) -> None:
    with pytest.raises(PayloadError, match="no agent to package"):
        payload_files(tmp_path)


def run_isolated(pyz: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-I", str(pyz), *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=pyz.parent,
        check=False,
    )


def test_payload_runs_in_an_isolated_interpreter(tmp_path: Path) -> None:
    pyz = tmp_path / "agent.pyz"
    pyz.write_bytes(build_payload(write_fake_agent(tmp_path / "agent")))
    result = run_isolated(pyz, "--version")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"fake agent {__version__} ecdsa ")


def test_real_agent_reports_its_version_from_the_payload(tmp_path: Path) -> None:
    pyz = tmp_path / "agent.pyz"
    pyz.write_bytes(build_payload())
    result = run_isolated(pyz, "--version")
    assert result.returncode == 0, result.stderr
    assert __version__ in result.stdout


def test_payload_bytes_do_not_depend_on_the_platform_building_it(
    agent_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    here = build_payload(agent_dir)
    monkeypatch.setattr(sys, "platform", "win32")  # zipfile marks entries by sys.platform
    assert build_payload(agent_dir) == here


def test_vmprep_own_license_travels_with_the_agent(agent_dir: Path) -> None:
    root = Path(__file__).resolve().parents[2]
    licence = payload_files(agent_dir)["LICENSES/vmprep.txt"]
    assert licence == (root / "LICENSE").read_bytes()
    assert b"Apache License" in licence
    assert b"Version 2.0, January 2004" in licence
