"""The Windows embeddable CPython zip (`python-3.X.Y-embed-<arch>.zip`): reading and checking it.

What validate, render and sysprep's preflight need to know about the zip that
`agent.runtime.embedded` names: that it is the file the spec pins (sha256), that it has the
embeddable layout (python.exe, pythonXY.dll, pythonXY.zip and pythonXY._pth at the top level,
https://docs.python.org/3/using/windows.html#the-embeddable-package), which CPython it is, and
which processor it is built for. The architecture comes from the zip itself: the `Machine`
field of python.exe's PE file header (https://learn.microsoft.com/en-us/windows/win32/debug/
pe-format#machine-types), never from the file name.

Standard library only; nothing here writes a file.
"""

from __future__ import annotations

import hashlib
import re
import struct
import zipfile
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path, PurePosixPath

# IMAGE_FILE_MACHINE_* (PE format, "Machine Types") -> image.architecture
MACHINES = {0x8664: "amd64", 0xAA64: "arm64", 0x14C: "x86"}
MAX_ZIP_BYTES = 256 * 1024 * 1024  # the official zips are ~10 MB
MAX_UNPACKED_BYTES = 512 * 1024 * 1024  # ~20 MB unpacked: this stops a zip bomb, not a Python
MAX_ENTRIES = 2000
OLDEST = (3, 8)  # the agent's floor (docs/agent.md)
# Entry names: safe in SetupComplete.cmd's neighbourhood and on every Windows file system.
_NAME_PART = r"[A-Za-z0-9_][A-Za-z0-9._+~-]*"
# Device names Windows reserves, with any extension (learn.microsoft.com/en-us/windows/win32/
# fileio/naming-a-file#naming-conventions)
_RESERVED = r"(?i)(CON|PRN|AUX|NUL|COM[0-9]|LPT[0-9])(\..*)?"
_PTH = r"python(3)([0-9]{1,2})\._pth"
_FILE_VERSION = rb"F\0i\0l\0e\0V\0e\0r\0s\0i\0o\0n\0\0\0(?:\0\0)?((?:[0-9.]\0){1,40})\0\0"


class EmbeddedZipError(Exception):
    """The zip is not there, not the pinned file, or not an embeddable CPython; says which."""


@dataclass(frozen=True)
class Embedded:
    """An embeddable CPython zip that passed every check."""

    architecture: str  # amd64 | arm64 | x86, from python.exe's PE header
    version: tuple[int, int]  # (3, 13), from the pythonXY._pth / pythonXY.dll names
    full_version: str  # "3.13.2" from python.exe's version resource, else "3.13"
    pth: str  # "python313._pth"
    zip_sha256: str
    zip_size: int
    entries: tuple[str, ...]  # file names, sorted
    unpacked_size: int
    archive: zipfile.ZipFile

    def read(self, name: str) -> bytes:
        return self.archive.read(name)

    @property
    def stdlib_zip(self) -> str:
        return f"python{self.version[0]}{self.version[1]}.zip"

    def describe(self) -> str:
        return f"CPython {self.full_version} {self.architecture}"


def read_zip(path: Path, sha256: str) -> Embedded:
    """Read the zip at `path`, check its sha256 (before anything else) and its layout."""
    try:
        with path.open("rb") as f:
            data = f.read(MAX_ZIP_BYTES + 1)
    except OSError as exc:
        raise EmbeddedZipError(f"cannot read {path}: {exc.strerror or exc}") from None
    if len(data) > MAX_ZIP_BYTES:
        raise EmbeddedZipError(f"{path} is larger than {MAX_ZIP_BYTES} bytes")
    actual = hashlib.sha256(data).hexdigest()
    if actual != sha256.lower():
        raise EmbeddedZipError(
            f"{path} has sha256 {actual}, but the spec pins {sha256.lower()}: "
            "not the file the spec names (a different download, or a changed file)"
        )
    return inspect_zip(data, str(path))


def inspect_zip(data: bytes, where: str = "the zip") -> Embedded:
    try:
        archive = zipfile.ZipFile(BytesIO(data))
        infos = archive.infolist()
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise EmbeddedZipError(f"{where} is not a zip file: {exc}") from None
    files = [info for info in infos if not info.is_dir()]
    if len(infos) > MAX_ENTRIES:
        raise EmbeddedZipError(f"{where} has {len(infos)} entries; at most {MAX_ENTRIES}")
    seen: dict[str, str] = {}
    for info in files:
        problem = entry_name_problem(info.filename)
        if problem:
            raise EmbeddedZipError(f"{where}: the entry {info.filename!r} {problem}")
        if info.filename.casefold() in seen:
            # Windows file names ignore case: one would overwrite the other.
            other = seen[info.filename.casefold()]
            raise EmbeddedZipError(f"{where}: the entries {other!r} and {info.filename!r} clash")
        seen[info.filename.casefold()] = info.filename
        if info.flag_bits & 0x1:
            raise EmbeddedZipError(f"{where}: the entry {info.filename!r} is encrypted")
    unpacked = sum(info.file_size for info in files)
    if unpacked > MAX_UNPACKED_BYTES:
        raise EmbeddedZipError(f"{where} unpacks to {unpacked} bytes; at most {MAX_UNPACKED_BYTES}")
    names = {info.filename for info in files}
    top = {name for name in names if "/" not in name}
    pths = sorted(name for name in top if re.fullmatch(_PTH, name))
    hint = "the official layout has python.exe and pythonXY._pth at the top of the zip"
    if "python.exe" not in top or len(pths) != 1:
        found = "no python.exe" if "python.exe" not in top else f"{len(pths)} pythonXY._pth files"
        raise EmbeddedZipError(f"{where} is not a Windows embeddable CPython ({found}; {hint})")
    match = re.fullmatch(_PTH, pths[0])
    assert match is not None
    version = (int(match[1]), int(match[2]))
    stem = f"python{version[0]}{version[1]}"
    for needed in (f"{stem}.dll", f"{stem}.zip"):
        if needed not in top:
            raise EmbeddedZipError(f"{where} has {pths[0]} but no {needed} ({hint})")
    if version < OLDEST:
        raise EmbeddedZipError(
            f"{where} is CPython {version[0]}.{version[1]}; the agent needs 3.8 or later"
        )
    try:
        exe = archive.read("python.exe")
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:  # a CRC or zlib error
        raise EmbeddedZipError(f"{where}: python.exe cannot be read: {exc}") from None
    machine = pe_machine(exe)
    if machine not in MACHINES:
        what = "not a PE file" if machine is None else f"built for machine type 0x{machine:04X}"
        raise EmbeddedZipError(f"{where}: python.exe is {what}")
    found_version = re.search(_FILE_VERSION, exe)
    full = found_version[1].decode("utf-16-le") if found_version else ""
    if not full.startswith(f"{version[0]}.{version[1]}."):
        full = f"{version[0]}.{version[1]}"
    return Embedded(
        architecture=MACHINES[machine],
        version=version,
        full_version=full,
        pth=pths[0],
        zip_sha256=hashlib.sha256(data).hexdigest(),
        zip_size=len(data),
        entries=tuple(sorted(names)),
        unpacked_size=unpacked,
        archive=archive,
    )


def pe_machine(data: bytes) -> int | None:
    """The Machine field of a PE image's file header, or None when `data` is not a PE image.

    MZ header; at 0x3C the offset of the `PE\\0\\0` signature; the two bytes after it are the
    machine type (https://learn.microsoft.com/en-us/windows/win32/debug/pe-format)."""
    if len(data) < 0x40 or data[:2] != b"MZ":
        return None
    (offset,) = struct.unpack_from("<I", data, 0x3C)
    if offset + 6 > len(data) or data[offset : offset + 4] != b"PE\0\0":
        return None
    (machine,) = struct.unpack_from("<H", data, offset + 4)
    return int(machine)


def entry_name_problem(name: str) -> str | None:
    """Why a zip entry cannot be unpacked into the image as it is named, or None."""
    if "\\" in name or name.startswith("/") or ":" in name:
        return "is not a relative path with '/' separators"
    parts = PurePosixPath(name).parts
    if len(parts) > 8 or len(name) > 120:
        return "is nested too deep or named too long"
    for part in parts:
        if not re.fullmatch(_NAME_PART, part) or part.endswith("."):
            return "has a name outside letters, digits and . _ + ~ - (or '.'/'..')"
        if re.fullmatch(_RESERVED, part):
            return f"has {part!r}, a device name Windows reserves"
    return None


RUNTIME_DIR = "python"  # under agent.install_dir


def interpreter_path(install_dir: str) -> str:
    """Where the bundled python.exe lands on the image: `<install_dir>\\python\\python.exe`."""
    return f"{install_dir}\\{RUNTIME_DIR}\\python.exe"


def zip_path(value: str, base: Path) -> Path:
    """`agent.runtime.embedded.zip` on the rendering machine: relative to the spec's directory."""
    path = Path(value)
    return path if path.is_absolute() else base / path
