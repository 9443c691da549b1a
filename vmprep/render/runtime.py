"""The bundled runtime: the Windows embeddable CPython unpacked under `<install_dir>\\python`.

Every file of the zip goes into the overlay byte for byte, except `pythonXY._pth`, which render
rewrites. A `._pth` file beside python.exe replaces the interpreter's whole search path: only
the paths it lists are on `sys.path`, the registry and `PYTHON*` environment variables are
ignored, and `site` is not imported (https://docs.python.org/3/using/windows.html#finding-
modules). Ours lists the standard library zip, the runtime directory (its `.pyd` extension
modules) and `..\\agent.pyz`, so the agent is importable even by `python.exe -m vmprep.agent`;
`python.exe -I -S agent.pyz` still puts the zipapp first (the Windows bench runs it).

The embeddable distribution carries its own VC runtime (`vcruntime140.dll`) but relies on the
Universal CRT of the OS, which is part of Windows 10 and Windows Server 2016 and later
(https://learn.microsoft.com/en-us/cpp/windows/universal-crt-deployment): every `image.os`
vmprep accepts has it (docs/runtime.md).
"""

from __future__ import annotations

import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vmprep.render.paths import AGENT_PYZ
from vmprep.spec.embedded import RUNTIME_DIR, Embedded, EmbeddedZipError, read_zip

PTH_HEADER = (
    "# Written by `vmprep render`: the agent's interpreter sees only these paths",
    "# (no site, no PYTHONPATH, no registry). Render again instead of editing.",
)


@dataclass(frozen=True)
class RuntimeChoice:
    """A bundled runtime asked for: the zip on this machine, its pinned sha256, and who asked."""

    zip: Path
    sha256: str
    source: str  # "agent.runtime.embedded" or "--embedded-python"


@dataclass(frozen=True)
class Bundle:
    embedded: Embedded
    zip_name: str
    files: dict[str, bytes]  # overlay path -> bytes

    @property
    def size(self) -> int:
        return sum(len(data) for data in self.files.values())

    def details(self) -> str:
        zipped = megabytes(self.embedded.zip_size)
        return (
            f"{self.embedded.describe()}: {len(self.files)} files, {megabytes(self.size)} "
            f"unpacked (from {self.zip_name}, {zipped})"
        )

    def summary(self) -> str:
        return f"bundled runtime {self.details()}"

    def manifest_entry(self, python: str) -> dict[str, Any]:
        return {
            "kind": "embedded",
            "python": python,
            "version": self.embedded.full_version,
            "architecture": self.embedded.architecture,
            "zip": {
                "name": self.zip_name,
                "sha256": self.embedded.zip_sha256,
                "size": self.embedded.zip_size,
            },
            "files": len(self.files),
            "size": self.size,
        }


def load(choice: RuntimeChoice) -> Embedded:
    """The zip, checked (sha256 first); EmbeddedZipError says what is wrong."""
    if not choice.zip.is_file():
        raise EmbeddedZipError(f"{choice.zip} does not exist (or is not a file)")
    return read_zip(choice.zip, choice.sha256)


def bundle(embedded: Embedded, zip_name: str, payload_dir: str) -> Bundle:
    """Every file of the runtime as overlay path -> bytes, the `._pth` rewritten."""
    base = f"{payload_dir}/{RUNTIME_DIR}"
    files: dict[str, bytes] = {}
    for name in embedded.entries:
        if name == embedded.pth:
            files[f"{base}/{name}"] = pth_bytes(embedded)
            continue
        try:
            files[f"{base}/{name}"] = embedded.read(name)
        except (zipfile.BadZipFile, zlib.error, OSError, EOFError, ValueError) as exc:
            raise EmbeddedZipError(f"{zip_name}: {name} cannot be unpacked: {exc}") from None
    return Bundle(embedded, zip_name, files)


def pth_bytes(embedded: Embedded) -> bytes:
    """`pythonXY._pth`: relative entries start at the directory of the file (python.exe's)."""
    lines = [*PTH_HEADER, embedded.stdlib_zip, ".", f"..\\{AGENT_PYZ}"]
    return ("\r\n".join(lines) + "\r\n").encode("ascii")


def megabytes(size: int) -> str:
    return f"{size / 1_000_000:.1f} MB"
