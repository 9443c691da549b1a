"""Which files `vmprep validate PATH...` checks: files, directories (recursively) and globs."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from vmprep.errors import UsageError
from vmprep.problems import Problem

SUFFIXES = (".yaml", ".yml")
_GLOB = set("*?[")


def expand_paths(args: Iterable[str]) -> list[Path]:
    """The files named by `args`, in order, each once. Raises UsageError for a path that
    names nothing (a typo should not pass as "no problems")."""
    found: dict[Path, None] = {}
    for arg in args:
        path = Path(arg)
        if path.is_dir():
            files = sorted(
                p
                for p in path.rglob("*")
                if p.suffix in SUFFIXES
                and p.is_file()
                and not any(part.startswith(".") for part in p.relative_to(path).parts)
            )
            if not files:
                raise UsageError(f"no .yaml or .yml files under {arg}")
        elif path.exists() or not _GLOB & set(arg):
            if not path.exists():
                raise UsageError(f"no such file or directory: {arg}")
            files = [path]
        else:
            import glob

            files = [Path(p) for p in sorted(glob.glob(arg, recursive=True)) if Path(p).is_file()]
            if not files:
                raise UsageError(f"no files match {arg}")
        found.update(dict.fromkeys(files))
    return list(found)


def check_paths(paths: Iterable[Path], config_repo: Path | None = None) -> list[Problem]:
    """Every problem of every file, sorted by file, line and column. With `config_repo`, each
    spec is also checked against the role it phones home for (vmprep.spec.roles)."""
    from vmprep.spec.load import load_file
    from vmprep.spec.model import check_loaded

    roles, root = None, config_repo or Path()
    if config_repo is not None:
        from vmprep.spec.roles import read_roles, role_problems

        if not config_repo.is_dir():
            raise UsageError(f"--config-repo {config_repo}: not a directory")
        roles = read_roles(config_repo)
    problems: list[Problem] = []
    for path in paths:
        loaded = load_file(path)
        found, data = check_loaded(loaded)
        problems += found
        if roles is not None and data is not None and data.get("kind") != "RoleConfig":
            problems += role_problems(loaded, data, roles, root)
    return sorted(problems)


STDIN = "<stdin>"


def check_stdin(data: bytes) -> list[Problem]:
    """`vmprep validate -`: the problems of one document read from standard input, named
    `<stdin>` (accept comments apply as in a file)."""
    import os
    import tempfile

    from vmprep.spec.accept import apply_accepts

    fd, name = tempfile.mkstemp(suffix=".yaml", prefix="vmprep-stdin-")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        problems = apply_accepts(check_paths([Path(name)]), [Path(name)])
    finally:
        os.unlink(name)
    return [
        Problem(STDIN, p.line, p.column, p.code, p.message, p.severity, p.path, p.hint)
        if p.file == name
        else p
        for p in problems
    ]
