"""The commented starter spec that `vmprep init` writes."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from vmprep.errors import UsageError


def starter_text() -> str:
    return Path(__file__).with_name("starter.yaml").read_text(encoding="utf-8")


def write_starter(path: Path, *, force: bool = False) -> None:
    """Write the starter spec to `path` atomically; refuse to replace a file without `force`."""
    if path.is_dir():
        raise UsageError(f"{path} is a directory", hint="name the file to write, e.g. vmprep.yaml")
    if path.exists() and not force:
        raise UsageError(f"{path} already exists", hint="pass --force to replace it")
    directory = path.parent if str(path.parent) else Path(".")
    if directory.exists() and not directory.is_dir():
        raise UsageError(f"{directory} is not a directory")
    directory.mkdir(parents=True, exist_ok=True)  # `vmprep init images/web.yaml` makes images/
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=directory)
    try:
        os.chmod(tmp, _mode(path))  # mkstemp's 0600 would hide a spec from the team
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as f:
            f.write(starter_text())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _mode(path: Path) -> int:
    """The mode a new file would get (0666 minus the umask), or the replaced file's."""
    try:
        return path.stat().st_mode & 0o7777
    except FileNotFoundError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask
