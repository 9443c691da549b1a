"""Writing a directory of files whole: into a temporary directory beside OUT, then renamed
into place, so that a failure never leaves a partial tree and an existing OUT is replaced in
two renames. `write_tree` writes a rendered overlay with it; `vmprep publish` its static tree."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from vmprep.errors import UsageError

if TYPE_CHECKING:
    from vmprep.render.build import RenderResult

MANIFEST = "manifest.json"


def write_tree(
    result: RenderResult, out_dir: Path, force: bool = False, spec_path: Path | None = None
) -> None:
    """Write `result` as the overlay OUT (plus OUT/manifest.json).

    OUT is created mode 0700 and its files 0600: they hold passwords and baked secrets.
    `--force` replaces only a previous overlay (see `replaceable_problem`).
    """
    out = Path(os.path.abspath(out_dir))
    if out.exists() or out.is_symlink():
        if not force:
            raise UsageError(f"{out_dir} already exists", hint="pass --force to replace it")
        if not out.is_dir() or out.is_symlink():
            raise UsageError(f"{out_dir} exists and is not a directory; not replacing it")
        problem = replaceable_problem(out, spec_path)
        if problem:
            raise UsageError(f"not replacing {out_dir}: {problem}", hint="choose another -o")
    files = {**result.files, MANIFEST: result.manifest_bytes()}
    write_dir(files, out_dir, private=True, tag="render")


def write_dir(files: Mapping[str, bytes], out_dir: Path, *, private: bool, tag: str) -> None:
    """Write `files` (POSIX paths relative to OUT -> bytes) as the directory OUT, replacing
    an existing OUT whole (the caller decides whether it may). `private`: OUT 0700 and its
    files 0600 (they hold secrets); otherwise OUT 0755 and files 0666 less the umask, for a
    web server to read. `tag` names the temporary directories (`.OUT.<tag>-...`).
    An OSError becomes a UsageError naming OUT; nothing is left behind either way."""
    out = Path(os.path.abspath(out_dir))
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.{tag}-", dir=out.parent))
    except OSError as exc:
        raise UsageError(f"cannot create {out_dir}: {exc.strerror or exc}") from exc
    try:
        if not private:
            tmp.chmod(0o755)
        for name, data in sorted(files.items()):
            path = tmp.joinpath(*name.split("/"))
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600 if private else 0o666)
            with os.fdopen(fd, "wb") as f:
                f.write(data)
        _swap(tmp, out)
    except BaseException as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        if isinstance(exc, OSError):
            raise UsageError(f"cannot write {out_dir}: {exc.strerror or exc}") from exc
        raise


def replaceable_problem(out: Path, spec_path: Path | None) -> str | None:
    """Why `render --force` must not delete the existing directory `out`, or None. It deletes
    only an empty directory or a previous overlay (a manifest.json that vmprep wrote), and
    never the spec, its directory or a parent of it, whatever they hold."""
    real = Path(os.path.realpath(out))
    if spec_path is not None:
        spec_real = Path(os.path.realpath(spec_path))
        if real == spec_real or real in spec_real.parents:
            return "it holds the spec being rendered"
    if real == Path(real.anchor) or real == Path(os.path.realpath(Path.home())):
        return "it is a root or home directory"
    try:
        entries = os.listdir(real)
    except OSError as exc:
        return f"cannot read it ({exc.strerror or exc})"
    if not entries:
        return None
    try:
        import json

        with open(real / MANIFEST, "rb") as f:
            manifest = json.loads(f.read(1024 * 1024))
        ours = isinstance(manifest, dict) and {"format", "vmprep_version", "files"} <= set(manifest)
    except (OSError, ValueError):
        ours = False
    if not ours:
        return "it is not a previous vmprep overlay (no manifest.json written by vmprep)"
    return None


def _swap(new: Path, out: Path) -> None:
    if not out.exists():
        os.rename(new, out)
        return
    old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=out.parent))
    os.rmdir(old)  # only the unique name is wanted
    os.rename(out, old)
    try:
        os.rename(new, out)
    except BaseException:
        os.rename(old, out)  # put the previous tree back
        raise
    shutil.rmtree(old, ignore_errors=True)
