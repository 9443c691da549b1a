"""Install a rendered overlay into the system drive, keeping a backup of every replaced file.

The install record (`<state_dir>/install.json`) is written before the first file changes and
names every file with its digests, so `restore` can undo an install even after a crash.
A file goes to its overlay path on the drive unless `targets` maps that overlay path to
another drive-relative path (generalize installs the answer file in System32\\Sysprep, not in
Setup's Panther cache); the record's `path` is always where the file was written.
Status: `installing` -> `installed` -> `generalized` (backups deleted: they may hold old
answer files with passwords, and must not be captured into the image) or `restored`.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from vmprep import __version__
from vmprep.errors import ExitCode, PreflightError, VmprepError
from vmprep.protocol.atomic import atomic_write

STATE_DIR = "ProgramData/vmprep/sysprep-install"
RECORD = "install.json"
UNFINISHED = ("installing", "installed")


class InstallError(VmprepError):
    """Installing or restoring failed (a file system error); exit 4 like other outside errors."""

    exit_code = ExitCode.EXTERNAL


@dataclass(frozen=True)
class Placement:
    rel: str  # overlay-relative POSIX path (the key of the file's bytes)
    dest: Path  # host path under the root
    replaces: bool  # a file is already there (it will be backed up)
    target: str  # drive-relative POSIX path written there (rel unless remapped)


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _safe_rel(rel: str) -> PurePosixPath:
    pure = PurePosixPath(rel)
    if pure.is_absolute() or not pure.parts or ".." in pure.parts or "\\" in rel or ":" in rel:
        raise InstallError(f"refusing to install outside the system drive: {rel!r}")
    return pure


def plan(
    files: Mapping[str, bytes], root: Path, targets: Mapping[str, str] | None = None
) -> list[Placement]:
    """Where each overlay file goes, and whether it replaces one (no I/O but stat).

    `targets` maps an overlay path to the drive-relative path it is installed at instead.
    """
    targets = targets or {}
    unknown = sorted(set(targets) - set(files))
    if unknown:
        raise InstallError(f"remapped files are not in the overlay: {', '.join(unknown)}")
    placements = []
    seen: dict[str, str] = {}
    for rel in sorted(files):
        _safe_rel(rel)
        target = targets.get(rel, rel)
        dest = root.joinpath(*_safe_rel(target).parts)
        other = seen.setdefault(target.casefold(), rel)
        if other != rel:  # Windows paths are case-insensitive
            raise InstallError(f"{other!r} and {rel!r} would both be installed as {target!r}")
        placements.append(Placement(rel, dest, dest.is_file(), target))
    return placements


def _write_atomic(dest: Path, data: bytes) -> None:
    atomic_write(dest, data)  # the agent's: temp beside dest, fsync, rename, temp gone on failure


def _save(record_path: Path, record: dict[str, Any]) -> None:
    record_path.parent.mkdir(parents=True, exist_ok=True)
    _write_atomic(record_path, json.dumps(record, indent=2, sort_keys=True).encode() + b"\n")


def load_record(record_path: Path) -> dict[str, Any]:
    try:
        record = json.loads(record_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InstallError(f"cannot read the install record {record_path}: {exc}") from None
    if not isinstance(record, dict) or not isinstance(record.get("files"), list):
        raise InstallError(f"{record_path} is not a vmprep install record")
    return record


def find_unfinished(state_dir: Path) -> Path | None:
    path = state_dir / RECORD
    if not path.is_file():
        return None
    try:
        status = json.loads(path.read_text(encoding="utf-8")).get("status")
    except (OSError, ValueError, AttributeError):
        return path  # unreadable: treat as unfinished, a human must look
    return path if status in UNFINISHED else None


def install(
    files: Mapping[str, bytes],
    root: Path,
    state_dir: Path,
    targets: Mapping[str, str] | None = None,
    remove: Sequence[str] = (),
) -> Path:
    """Back up, then write every file; on any error undo what was done. Returns the record.

    `targets` remaps overlay paths as in `plan`. `remove` names drive-relative files to back up
    and delete (leftover answer files on platforms without one of ours); restore puts them back.
    """
    record_path = state_dir / RECORD
    if find_unfinished(state_dir):
        raise PreflightError(
            f"an earlier vmprep install was not finished ({record_path})",
            hint="run `vmprep sysprep --restore` first",
        )
    placements = plan(files, root, targets)
    backup_dir = state_dir / "backup"
    if backup_dir.exists():
        shutil.rmtree(backup_dir)
    entries: list[dict[str, Any]] = []
    record: dict[str, Any] = {
        "format": 1,
        "vmprep_version": __version__,
        "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "root": str(root),
        "status": "installing",
        "files": entries,
        "created_dirs": [],
    }
    try:
        for placement in placements:
            entry: dict[str, Any] = {
                "path": placement.target,  # where it is written; restore works from this
                "overlay": placement.rel,
                "sha256": _sha256(files[placement.rel]),
            }
            if placement.replaces:
                backup = backup_dir.joinpath(*PurePosixPath(placement.target).parts)
                backup.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(placement.dest, backup)
                entry["backup"] = backup.relative_to(state_dir).as_posix()
                entry["sha256_before"] = _sha256(backup.read_bytes())
            entries.append(entry)
        for rel in remove:
            dest = root.joinpath(*_safe_rel(rel).parts)
            if not dest.is_file():
                continue
            backup = backup_dir.joinpath(*PurePosixPath(rel).parts)
            backup.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(dest, backup)
            entries.append(
                {"path": rel, "removed": True, "backup": backup.relative_to(state_dir).as_posix()}
            )
        _save(record_path, record)
        for entry in entries:
            dest = root.joinpath(*PurePosixPath(entry["path"]).parts)
            if entry.get("removed"):
                dest.unlink()
                continue
            _make_parents(dest.parent, root, record["created_dirs"])
            _write_atomic(dest, files[entry["overlay"]])
            entry["written"] = True
        record["status"] = "installed"
        _save(record_path, record)
    except OSError as exc:
        if record_path.is_file():
            _save(record_path, record)
            restore(record_path)
        raise InstallError(
            f"installing the overlay failed, nothing changed: {exc}",
            hint="check free space and permissions on the system drive",
        ) from None
    return record_path


def _make_parents(folder: Path, root: Path, created: list[str]) -> None:
    missing = []
    while not folder.exists() and folder != root:
        missing.append(folder)
        folder = folder.parent
    for path in reversed(missing):
        path.mkdir()
        created.append(path.relative_to(root).as_posix())


def restore(record_path: Path) -> list[str]:
    """Put every replaced file back and remove every added one. Returns what was undone."""
    record = load_record(record_path)
    root = Path(record["root"])
    state_dir = record_path.parent
    undone = []
    try:
        for entry in reversed(record["files"]):
            dest = root.joinpath(*_safe_rel(entry["path"]).parts)
            if "backup" in entry:
                data = (state_dir / entry["backup"]).read_bytes()
                if not dest.is_file() or _sha256(dest.read_bytes()) != _sha256(data):
                    _write_atomic(dest, data)
                    undone.append(entry["path"])
            elif entry.get("written") and dest.is_file():
                dest.unlink()
                undone.append(entry["path"])
        for rel in reversed(record.get("created_dirs", [])):
            folder = root.joinpath(*_safe_rel(rel).parts)
            if folder.is_dir() and not any(folder.iterdir()):
                folder.rmdir()
    except OSError as exc:
        raise InstallError(
            f"restoring the files replaced by vmprep failed: {exc}",
            hint=f"the backups are in {state_dir / 'backup'}; the record is {record_path}",
        ) from None
    _finish(record_path, record, "restored")
    return undone


def finish(record_path: Path) -> None:
    """Sysprep succeeded: keep the record, delete the backups (they must not ship)."""
    _finish(record_path, load_record(record_path), "generalized")


def _finish(record_path: Path, record: dict[str, Any], status: str) -> None:
    shutil.rmtree(record_path.parent / "backup", ignore_errors=True)
    for entry in record["files"]:
        entry.pop("backup", None)
    record["status"] = status
    _save(record_path, record)
