"""`vmprep wheelhouse`: vmprep and its dependencies as wheels, installable with no index."""

from __future__ import annotations

import io
import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import pytest

from vmprep import __version__
from vmprep.wheelhouse import (
    build,
    missing_requirements,
    pip_download_argv,
    requirements_of,
    target_environment,
)


def fake_wheel(directory: Path, name: str, *requires: str) -> Path:
    """A wheel with only its METADATA: enough for the requirement walk."""
    path = directory / f"{name}-1.0-py3-none-any.whl"
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        lines = ["Metadata-Version: 2.1", f"Name: {name}", "Version: 1.0"]
        lines += [f"Requires-Dist: {req}" for req in requires]
        archive.writestr(f"{name}-1.0.dist-info/METADATA", "\n".join(lines) + "\n")
    path.write_bytes(buffer.getvalue())
    return path


def test_pip_download_asks_for_binary_wheels_of_the_target(tmp_path):
    argv = pip_download_argv(["click>=8.2", "pyyaml"], tmp_path, "win_arm64", "3.12")
    assert argv == [
        sys.executable, "-m", "pip", "download", "--disable-pip-version-check",
        "--only-binary", ":all:", "--dest", str(tmp_path),
        "--platform", "win_arm64", "--implementation", "cp", "--python-version", "3.12",
        "click>=8.2", "pyyaml",
    ]  # fmt: skip


def test_markers_are_evaluated_for_the_build_vm_not_this_machine(tmp_path):
    fake_wheel(
        tmp_path,
        "tool",
        'colorama; platform_system == "Windows"',
        'uvloop; sys_platform != "win32"',
        'typing-extensions>=4; python_version < "3.13"',
        'pytest; extra == "test"',
        "attrs>=22",
    )
    fake_wheel(tmp_path, "attrs")
    windows_312 = target_environment("win_amd64", "3.12")
    assert missing_requirements(tmp_path, windows_312) == ["colorama", "typing-extensions>=4"]
    assert missing_requirements(tmp_path, target_environment("win_arm64", "3.13")) == ["colorama"]
    here = missing_requirements(tmp_path, None)
    assert "colorama" not in here if sys.platform != "win32" else "uvloop" not in here


def test_requirements_of_a_wheel_leave_out_extras(tmp_path):
    wheel = fake_wheel(tmp_path, "x", "a>=1", 'b; extra == "server"', 'c; os_name == "nt"')
    assert requirements_of(wheel) == ["a>=1", 'c; os_name == "nt"']


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--platform", "win_amd64"], "--platform win_amd64 needs --python-version"),
        (["--python-version", "3"], "--python-version '3': expected 3.X"),
        (["--platform", "linux"], "Invalid value for '--platform'"),
    ],
)
def test_usage_errors(run_vmprep, tmp_path, args, message):
    result = run_vmprep("wheelhouse", "-o", str(tmp_path / "w"), *args, expect=2)
    assert message in result.stderr
    assert not (tmp_path / "w").exists()


def test_a_directory_that_holds_something_is_not_filled(run_vmprep, tmp_path):
    (tmp_path / "keep.txt").write_text("mine")
    result = run_vmprep("wheelhouse", "-o", str(tmp_path), expect=2)
    assert "exists and is not an empty directory" in result.stderr


@pytest.fixture(scope="module")
def windows_house(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("house") / "win_amd64"
    build(out, "win_amd64", "3.12")
    return out


@pytest.mark.slow
def test_a_win_amd64_wheelhouse_holds_every_dependency_as_a_wheel(windows_house):
    names = sorted(p.name for p in windows_house.iterdir())
    assert f"vmprep-{__version__}-py3-none-any.whl" in names
    assert all(n.endswith(("-none-any.whl", "-cp312-cp312-win_amd64.whl")) for n in names), names
    assert any(n.startswith("pyyaml-") and n.endswith("win_amd64.whl") for n in names)
    assert missing_requirements(windows_house, target_environment("win_amd64", "3.12")) == []
    # pip's own resolver, for that platform, from this directory alone
    target = windows_house.parent / "target"
    argv = [sys.executable, "-m", "pip", "install", "--dry-run", "--no-index", "--find-links"]
    argv += [str(windows_house), "--only-binary", ":all:", "--platform", "win_amd64"]
    argv += ["--python-version", "3.12", "--implementation", "cp", "--target", str(target)]
    done = subprocess.run([*argv, "vmprep"], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert f"vmprep-{__version__}" in done.stdout


@pytest.mark.slow
def test_a_wheelhouse_for_this_machine_installs_into_a_fresh_venv_offline(tmp_path):
    house = tmp_path / "house"
    build(house, "current", None)
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True).create(env_dir)
    python = env_dir / ("Scripts/python.exe" if sys.platform == "win32" else "bin/python")
    install = [str(python), "-m", "pip", "install", "--disable-pip-version-check", "--no-index"]
    done = subprocess.run(
        [*install, "--find-links", str(house), "vmprep"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    spec = Path(__file__).resolve().parent.parent / "examples" / "minimal.yaml"
    check = subprocess.run(
        [str(python), "-m", "vmprep", "validate", str(spec)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert check.returncode == 0, check.stdout + check.stderr
