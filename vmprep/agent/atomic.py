"""Crash-safe file writes: the state, the report spool and the files steps write all go
through here, so a kill or a power cut at any point leaves the old file or the new one."""

from __future__ import annotations

import os
from pathlib import Path

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing is not imported at run time: it costs start-up time
    from collections.abc import Callable
    from typing import BinaryIO


def write_atomic(path: Path, write: Callable[[BinaryIO], object]) -> None:
    """`write` fills a temporary file beside `path` (`.NAME.tmp-PID`), which is flushed,
    fsynced and renamed over `path`; on POSIX the directory is fsynced too. A failure removes
    the temporary file and leaves `path` as it was. The one way the agent writes a file."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def atomic_write(path: Path, data: bytes) -> None:
    write_atomic(path, lambda f: f.write(data))


def fsync_dir(path: Path) -> None:
    """Make a rename durable (POSIX; Windows has no directory handles to sync)."""
    if os.name != "posix":
        return
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
