"""`vmprep wheelhouse`: vmprep and its dependencies as wheels, for a build VM with no index.

The wheelhouse is a directory of wheels: vmprep's own (built from this checkout, or the wheel
given with `--source`) and every dependency as a binary wheel for the target platform and
Python, fetched by `pip download --only-binary :all: --platform ... --python-version ...
--implementation cp` (https://pip.pypa.io/en/stable/cli/pip_download/). On the build VM,
`python -m pip install --no-index --find-links DIR vmprep` installs from it alone
(https://pip.pypa.io/en/stable/cli/pip_install/#cmdoption-no-index).

`--only-binary :all:` is what `--platform` requires, and it is what the build VM needs: an
sdist would have to be built there, with a compiler and the build backend from an index.
pip evaluates dependency markers (`; sys_platform == "win32"`, `; python_version < "3.13"`)
for the machine it runs on, not for `--platform`: so the wheelhouse is completed afterwards,
each wheel's requirements evaluated for the target (https://packaging.python.org/en/latest/
specifications/dependency-specifiers/#environment-markers) until nothing is missing.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from vmprep.errors import ExternalToolError, UsageError

PLATFORMS = ("win_amd64", "win_arm64", "current")
MACHINES = {"win_amd64": "AMD64", "win_arm64": "ARM64"}  # platform.machine() on Windows
ROUNDS = 5
Runner = Callable[[Sequence[str]], "subprocess.CompletedProcess[str]"]


@dataclass(frozen=True)
class Wheelhouse:
    directory: Path
    wheels: list[str]  # file names, sorted
    requirements: list[str]  # vmprep's own Requires-Dist (without extras)


def run_pip(argv: Sequence[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(argv), capture_output=True, text=True, check=False)


def checkout_root() -> Path | None:
    """The source checkout vmprep runs from (an editable install), or None."""
    root = Path(__file__).resolve().parent.parent
    for name, pattern in (
        ("pyproject.toml", r'(?m)^name = "vmprep"$'),
        ("setup.cfg", r"(?m)^name = vmprep$"),
    ):
        if (root / name).is_file() and re.search(pattern, (root / name).read_text()):
            return root
    return None


def pip_wheel_argv(source: Path, dest: Path) -> list[str]:
    return [
        sys.executable,
        "-m",
        "pip",
        "wheel",
        "--no-deps",
        "--wheel-dir",
        str(dest),
        str(source),
    ]


def pip_download_argv(
    requirements: Sequence[str], dest: Path, platform: str, python_version: str | None
) -> list[str]:
    argv = [sys.executable, "-m", "pip", "download", "--disable-pip-version-check"]
    argv += ["--only-binary", ":all:", "--dest", str(dest)]
    if platform != "current":
        argv += ["--platform", platform, "--implementation", "cp"]
    if python_version is not None:
        argv += ["--python-version", python_version]
    return [*argv, *requirements]


def requirements_of(wheel: Path) -> list[str]:
    """The Requires-Dist lines of a wheel's METADATA that apply without extras."""
    with zipfile.ZipFile(wheel) as archive:
        name = next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
        metadata = archive.read(name).decode("utf-8")
    found = re.findall(r"(?m)^Requires-Dist: (.+)$", metadata)
    return [req.strip() for req in found if "extra ==" not in req]


def build(
    out: Path,
    platform: str,
    python_version: str | None,
    source: Path | None = None,
    *,
    run: Runner = run_pip,
) -> Wheelhouse:
    """Fill `out` (created; must not hold anything else) with the wheelhouse."""
    if platform not in PLATFORMS:
        raise UsageError(
            f"unknown platform {platform!r}", hint=f"use one of {', '.join(PLATFORMS)}"
        )
    if platform != "current" and python_version is None:
        raise UsageError(
            f"--platform {platform} needs --python-version (the build VM's, e.g. 3.12)"
        )
    if python_version is not None and not re.fullmatch(r"3\.[0-9]{1,2}", python_version):
        raise UsageError(f"--python-version {python_version!r}: expected 3.X, e.g. 3.12")
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise UsageError(f"{out} exists and is not an empty directory")
    out.mkdir(parents=True, exist_ok=True)
    own = _own_wheel(out, source, run)
    requirements = requirements_of(own)
    done = run(pip_download_argv(requirements, out, platform, python_version))
    if done.returncode != 0:
        raise ExternalToolError(
            f"pip download exited with {done.returncode}: {_last_line(done.stderr)}",
            hint="each dependency must exist as a wheel for that platform and Python",
        )
    environment = target_environment(platform, python_version)
    for _ in range(ROUNDS):
        missing = missing_requirements(out, environment)
        if not missing:
            break
        done = run(pip_download_argv(missing, out, platform, python_version))
        if done.returncode != 0:
            raise ExternalToolError(
                f"pip download {' '.join(missing)} exited with {done.returncode}: "
                f"{_last_line(done.stderr)}"
            )
    else:
        raise ExternalToolError(
            f"the wheelhouse still lacks {missing_requirements(out, environment)}"
        )
    wheels = sorted(p.name for p in out.iterdir())
    stray = [name for name in wheels if not name.endswith(".whl")]
    if stray:
        raise ExternalToolError(f"pip download left files that are not wheels: {stray}")
    return Wheelhouse(out, wheels, requirements)


def target_environment(platform: str, python_version: str | None) -> dict[str, str] | None:
    """The marker environment of the build VM (None: this machine's, as pip uses)."""
    if platform == "current":
        if python_version is None:
            return None
        from packaging.markers import default_environment

        env = {key: str(value) for key, value in default_environment().items()}
    else:
        env = {
            "os_name": "nt",
            "sys_platform": "win32",
            "platform_system": "Windows",
            "platform_machine": MACHINES[platform],
            "platform_release": "",
            "platform_version": "",
            "implementation_name": "cpython",
            "platform_python_implementation": "CPython",
        }
    version = python_version or f"{sys.version_info[0]}.{sys.version_info[1]}"
    env.update(
        python_version=version,
        python_full_version=f"{version}.0",
        implementation_version=f"{version}.0",
    )
    return env


def missing_requirements(directory: Path, environment: dict[str, str] | None) -> list[str]:
    """Requirements of the wheels in `directory` that apply on the target and that no wheel
    there satisfies by name (pip checks versions when it installs)."""
    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name, parse_wheel_filename

    wheels = sorted(directory.glob("*.whl"))
    have = {parse_wheel_filename(w.name)[0] for w in wheels}
    missing: dict[str, str] = {}
    for wheel in wheels:
        for line in requirements_of(wheel):
            req = Requirement(line)
            env = None if environment is None else {**environment, "extra": ""}
            if req.marker is not None and not req.marker.evaluate(env):
                continue
            name = canonicalize_name(req.name)
            if name not in have:
                req.marker = None
                missing.setdefault(name, str(req))
    return sorted(missing.values())


def _own_wheel(out: Path, source: Path | None, run: Runner) -> Path:
    if source is not None and source.suffix == ".whl":
        if not source.is_file():
            raise UsageError(f"no such wheel: {source}")
        return Path(shutil.copy2(source, out / source.name))
    source = source or checkout_root()
    if source is None:
        raise UsageError(
            "vmprep is not running from a source checkout: there is no wheel of it to add",
            hint="pass --source with a checkout of vmprep or a vmprep wheel",
        )
    with tempfile.TemporaryDirectory(prefix="vmprep-wheel-") as tmp:
        done = run(pip_wheel_argv(source, Path(tmp)))
        if done.returncode != 0:
            raise ExternalToolError(
                f"pip wheel {source} exited with {done.returncode}: {_last_line(done.stderr)}"
            )
        built = sorted(Path(tmp).glob("vmprep-*.whl"))
        if len(built) != 1:
            raise ExternalToolError(f"pip wheel {source} made no vmprep wheel")
        return Path(shutil.move(str(built[0]), out / built[0].name))


def _last_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else "(no output)"
