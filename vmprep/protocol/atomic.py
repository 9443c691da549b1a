"""Crash-safe file writes: the state, the report spool and the files steps write all go
through here, so a kill or a power cut at any point leaves the old file or the new one.

On Windows a rename over a file fails while another process has that file open: `MoveFileEx`
answers ERROR_ACCESS_DENIED (5) or ERROR_SHARING_VIOLATION (32) (Python's `open()` does not
even ask for FILE_SHARE_DELETE, and without POSIX rename semantics an open target is refused
anyway). Readers such as `status --wait` hold the state file for a moment, so the rename is
retried with a bounded backoff, and readers retry a read that meets a rename (`read_retrying`);
a reader can never make the writer fail, nor the writer a reader.
https://learn.microsoft.com/en-us/windows/win32/api/winbase/nf-winbase-movefileexw
https://learn.microsoft.com/en-us/windows/win32/fileio/file-access-rights-constants
https://learn.microsoft.com/en-us/windows/win32/debug/system-error-codes--0-499-
"""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing is not imported at run time: it costs start-up time
    from collections.abc import Callable
    from typing import BinaryIO

# ERROR_ACCESS_DENIED, ERROR_SHARING_VIOLATION, ERROR_LOCK_VIOLATION
SHARING_ERRORS = (5, 32, 33)
# Waits between attempts: 10 ms doubling to 0.5 s, about 10 s in all.
RETRY_DELAYS = (0.01, 0.02, 0.04, 0.08, 0.16, 0.32) + (0.5,) * 18


_replace = os.replace  # tests put a rename that fails as Windows does here


class FileBusyError(OSError):
    """The target stayed open in another process through every retry."""


def is_sharing_violation(exc: BaseException) -> bool:
    """A Windows error that another process's open handle causes and that goes away."""
    return isinstance(exc, PermissionError) and getattr(exc, "winerror", None) in SHARING_ERRORS


def replace_retrying(
    src: Path,
    dst: Path,
    *,
    replace: Callable[[Path, Path], None] | None = None,
    sleep: Callable[[float], None] = time.sleep,
    delays: tuple[float, ...] | None = None,
) -> None:
    """`os.replace`, retried while Windows reports the target in use; then FileBusyError."""
    delays = RETRY_DELAYS if delays is None else delays
    for delay in (*delays, None):
        try:
            (replace or _replace)(src, dst)
            return
        except OSError as exc:  # noqa: PERF203 - a retry loop: the exception is the signal
            if not is_sharing_violation(exc):
                raise
            if delay is None:
                raise FileBusyError(
                    exc.errno,
                    f"{dst} stayed in use by another process for {sum(delays):g}s "
                    f"(Windows error {getattr(exc, 'winerror', None)}): close the program "
                    "that holds it open, or stop its service, and run the step again",
                    str(dst),
                ) from None
            sleep(delay)


def write_atomic(
    path: Path,
    write: Callable[[BinaryIO], object],
    *,
    replace: Callable[[Path, Path], None] | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> None:
    """`write` fills a temporary file beside `path` (`.NAME.tmp-PID`), which is flushed,
    fsynced and renamed over `path` (retried while another process holds `path` open on
    Windows); on POSIX the directory is fsynced too. A failure removes the temporary file and
    leaves `path` as it was. The one way the agent writes a file."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        replace_retrying(tmp, path, replace=replace, sleep=sleep)
    except BaseException:
        with contextlib.suppress(OSError):  # gone, or held: the next run removes stale temps
            tmp.unlink()
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


def read_retrying(
    path: Path,
    *,
    opener: Callable[[Path], bytes] | None = None,
    sleep: Callable[[float], None] = time.sleep,
    delays: tuple[float, ...] = RETRY_DELAYS[:8],
) -> bytes:
    """A whole file, retried while Windows reports it busy. The handle is held only for the
    read, and the writer retries its rename meanwhile (`replace_retrying`)."""
    read = opener or _read_plain
    for delay in (*delays, None):
        try:
            return read(path)
        except OSError as exc:  # noqa: PERF203 - a retry loop: the exception is the signal
            if delay is None or not is_sharing_violation(exc):
                raise
            sleep(delay)
    raise AssertionError("unreachable")  # pragma: no cover


def _read_plain(path: Path) -> bytes:
    return path.read_bytes()
