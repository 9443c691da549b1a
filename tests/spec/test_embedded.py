"""agent.runtime.embedded: the zip is read by validate when it is there (vmprep.spec.embedded)."""

from __future__ import annotations

import hashlib
import struct
from pathlib import Path, PurePosixPath

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests import embed
from vmprep.problems import Severity
from vmprep.spec import check_file
from vmprep.spec.embedded import (
    EmbeddedZipError,
    entry_name_problem,
    inspect_zip,
    interpreter_path,
    pe_machine,
    read_zip,
)

SPEC = """\
version: 1
image: {{name: t, os: {os}, architecture: {arch}}}
setup: {{administrator: {{password: {{env: P}}}}}}
agent:
  runtime:
    embedded:
      zip: {zip}
      sha256: '{sha}'
"""


def with_machine(files: dict[str, bytes], machine: int) -> dict[str, bytes]:
    exe = bytearray(files["python.exe"])
    (offset,) = struct.unpack_from("<I", exe, 0x3C)
    struct.pack_into("<H", exe, offset + 4, machine)
    return {**files, "python.exe": bytes(exe)}


def write_spec(directory: Path, zip_name: str, sha: str, arch: str = "amd64") -> Path:
    os_name = "windows-server-2025" if arch == "arm64" else "windows-server-2022"
    spec = directory / "spec.yaml"
    spec.write_text(SPEC.format(os=os_name, arch=arch, zip=zip_name, sha=sha))
    return spec


def embedded_problems(spec: Path):
    return [p for p in check_file(spec) if p.code == "embedded-runtime"]


def test_the_official_zip_is_read_as_cpython_3_13_2_for_amd64(embed_zip):
    path, sha = embed_zip
    found = read_zip(path, sha.upper())
    assert (found.architecture, found.version, found.full_version) == ("amd64", (3, 13), "3.13.2")
    assert (found.pth, found.stdlib_zip) == ("python313._pth", "python313.zip")
    assert {"python.exe", "python313.dll", "vcruntime140.dll"} <= set(found.entries)
    assert found.describe() == "CPython 3.13.2 amd64"


def test_a_spec_beside_its_zip_validates(tmp_path, embed_zip):
    path, sha = embed_zip
    (tmp_path / "rt").mkdir()
    (tmp_path / "rt" / path.name).write_bytes(path.read_bytes())
    assert [p for p in check_file(write_spec(tmp_path, f"rt/{path.name}", sha)) if p.is_error] == []


def test_an_architecture_mismatch_is_an_error_on_the_zip_line(tmp_path, embed_zip):
    path, sha = embed_zip
    (p,) = embedded_problems(write_spec(tmp_path, str(path), sha, arch="arm64"))
    assert (p.severity, p.line, p.column) == (Severity.ERROR, 7, 12)
    assert p.message == (
        f"{path} is CPython 3.13.2 amd64 (python.exe's PE header), but image.architecture is arm64"
    )
    assert p.hint == "use python-3.13.2-embed-arm64.zip, or fix image.architecture"


def test_the_architecture_comes_from_the_pe_header_not_the_file_name(tmp_path, embed_files):
    data = embed.build_zip(with_machine(embed_files, 0xAA64), deflate=False)
    zip_path = tmp_path / "python-3.13.2-embed-amd64.zip"  # the name says amd64; it is not
    zip_path.write_bytes(data)
    sha = hashlib.sha256(data).hexdigest()
    assert embedded_problems(write_spec(tmp_path, zip_path.name, sha, arch="arm64")) == []
    (p,) = embedded_problems(write_spec(tmp_path, zip_path.name, sha, arch="amd64"))
    assert "is CPython 3.13.2 arm64" in p.message


def test_a_sha256_mismatch_names_both_hashes(tmp_path, embed_zip):
    path, sha = embed_zip
    (p,) = embedded_problems(write_spec(tmp_path, str(path), "0" * 64))
    assert p.message == (
        f"{path} has sha256 {sha}, but the spec pins {'0' * 64}: "
        "not the file the spec names (a different download, or a changed file)"
    )


def test_a_zip_that_is_not_there_is_left_to_render(tmp_path):
    assert embedded_problems(write_spec(tmp_path, "later/python-embed.zip", "0" * 64)) == []


def test_the_interpreter_path_is_under_the_install_dir():
    assert (
        interpreter_path("C:\\ProgramData\\vmprep") == "C:\\ProgramData\\vmprep\\python\\python.exe"
    )


@pytest.mark.parametrize(
    ("machine", "arch"), [(0x8664, "amd64"), (0xAA64, "arm64"), (0x14C, "x86")]
)
def test_pe_machine_types(embed_files, machine, arch):
    files = with_machine(embed_files, machine)
    assert pe_machine(files["python.exe"]) == machine
    assert inspect_zip(embed.build_zip(files, deflate=False)).architecture == arch


@pytest.mark.parametrize("data", [b"", b"MZ" + b"\0" * 100, b"PE\0\0" * 40, b"\x7fELF" * 40])
def test_pe_machine_of_something_else_is_none(data):
    assert pe_machine(data) is None


def test_an_unknown_machine_type_is_refused(embed_files):
    with pytest.raises(EmbeddedZipError, match=r"python.exe is built for machine type 0x01C4"):
        inspect_zip(embed.build_zip(with_machine(embed_files, 0x1C4), deflate=False))  # ARMNT


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"../evil.dll": b"x"}, "the entry '../evil.dll' has a name outside"),
        ({"Lib/../../x": b"x"}, "has a name outside"),
        ({"C:/x": b"x"}, "is not a relative path"),
        ({"/etc/passwd": b"x"}, "is not a relative path"),
        ({"a\\b.dll": b"x"}, "is not a relative path"),
        ({"CON.txt": b"x"}, "has 'CON.txt', a device name Windows reserves"),
        ({"PYTHON.EXE": b"x"}, "the entries 'PYTHON.EXE' and 'python.exe' clash"),
        ({"python37._pth": b""}, r"is not a Windows embeddable CPython \(2 pythonXY._pth files"),
    ],
)
def test_entries_that_cannot_be_unpacked_are_refused(embed_files, change, message):
    with pytest.raises(EmbeddedZipError, match=message):
        inspect_zip(embed.build_zip({**embed_files, **change}, deflate=False))


@pytest.mark.parametrize(
    ("drop", "message"),
    [
        ("python.exe", "no python.exe"),
        ("python313._pth", "0 pythonXY._pth files"),
        ("python313.dll", "has python313._pth but no python313.dll"),
        ("python313.zip", "has python313._pth but no python313.zip"),
    ],
)
def test_a_zip_without_the_embeddable_layout_is_refused(embed_files, drop, message):
    files = {name: data for name, data in embed_files.items() if name != drop}
    with pytest.raises(EmbeddedZipError, match=message):
        inspect_zip(embed.build_zip(files, deflate=False))


def test_a_python_older_than_the_agent_floor_is_refused(embed_files):
    files = {n.replace("313", "37"): d for n, d in embed_files.items()}
    with pytest.raises(EmbeddedZipError, match=r"is CPython 3\.7; the agent needs 3\.8 or later"):
        inspect_zip(embed.build_zip(files, deflate=False))


def test_not_a_zip():
    with pytest.raises(EmbeddedZipError, match="is not a zip file"):
        inspect_zip(b"PK\x03\x04 not really")


@given(st.text(min_size=1, max_size=40))
def test_an_accepted_entry_name_stays_inside_the_runtime_directory(name):
    if entry_name_problem(name) is None:
        parts = PurePosixPath(name).parts
        assert not {".", ".."} & set(parts)
        assert not {"\\", ":"} & set(name)
        assert not name.startswith("/")
        assert all(part.isascii() and not part.endswith((".", " ")) for part in parts)
