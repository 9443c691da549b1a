"""Reading a `{file: path}` secret (render, serve, publish): one careful open.

A secret file is read by a tool that often runs in CI on specs from a pull request, so the
reference is treated as hostile input:

- only a regular file: a FIFO or a device would block the read forever (or, for `/dev/zero`,
  never end), so the file is opened non-blocking and checked with fstat before reading;
- nothing under `/proc`, `/sys` or `/dev` (process memory, environment, kernel state);
- only inside the directory of the file that references it, after symlinks are resolved: a
  spec must not be able to read `~/.ssh/id_ed25519` or `../../other-team/secret` into an
  image. `--allow-secret-path DIR` (or `VMPREP_ALLOW_SECRET_PATH`, directories separated by
  the OS path separator) allows more directories, e.g. a mounted CI secret store.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Sequence
from pathlib import Path

MAX_SECRET_FILE = 64 * 1024
ALLOW_ENV = "VMPREP_ALLOW_SECRET_PATH"
_SYSTEM = ("/proc", "/sys", "/dev")


def allowed_dirs(extra: Sequence[str | Path] = ()) -> list[Path]:
    """The directories `--allow-secret-path` and VMPREP_ALLOW_SECRET_PATH allow."""
    dirs = [Path(d) for d in extra]
    dirs += [Path(d) for d in os.environ.get(ALLOW_ENV, "").split(os.pathsep) if d]
    return [Path(os.path.realpath(d)) for d in dirs]


def read_secret_file(
    target: str, base: Path, allowed: Sequence[Path] = ()
) -> tuple[str, None] | tuple[None, str]:
    """The text of the secret file `target` (relative to `base`), or (None, why not)."""
    from vmprep.problems import ref_name

    shown = ref_name("file", target)
    path = Path(target)
    if not path.is_absolute():
        path = base / path
    real = Path(os.path.realpath(path))
    if any(real == Path(s) or Path(s) in real.parents for s in _SYSTEM):
        return None, f"{shown} is under /proc, /sys or /dev; a secret is a regular file"
    roots = [Path(os.path.realpath(base)), *allowed]
    if not any(real == root or root in real.parents for root in roots):
        return None, (
            f"{shown} is outside {base} (the spec's directory); "
            "allow its directory with --allow-secret-path DIR"
        )
    try:
        fd = os.open(real, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0))
    except OSError as exc:
        return None, f"cannot read {shown}: {exc.strerror or exc}"
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None, f"{shown} is not a regular file (a FIFO, device or directory)"
        raw = os.read(fd, MAX_SECRET_FILE + 1)
    except OSError as exc:
        return None, f"cannot read {shown}: {exc.strerror or exc}"
    finally:
        os.close(fd)
    if len(raw) > MAX_SECRET_FILE:
        return None, f"{shown} is larger than {MAX_SECRET_FILE} bytes"
    try:
        return raw.decode("utf-8"), None
    except UnicodeDecodeError:
        return None, f"{shown} is not UTF-8 text"
