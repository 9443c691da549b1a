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
            files = sorted(p for p in _walk(path) if p.suffix in SUFFIXES)
            if not files:
                raise UsageError(f"no .yaml or .yml files under {arg}")
        elif path.exists() or not _GLOB & set(arg):
            if not path.exists():
                raise UsageError(f"no such file or directory: {arg}")
            files = [path]
        else:
            files = _glob(arg)
            if not files:
                raise UsageError(f"no files match {arg}")
        found.update(dict.fromkeys(files))
    return list(found)


def _walk(root: Path) -> list[Path]:
    """Every file under `root`, hidden ones (`.git`) left out. Symbolic links to directories
    are not followed: a link loop (`a/loop -> ..`) would otherwise repeat the tree until the
    path is too long, taking minutes and gigabytes (glob's `**` and rglob follow them)."""
    import os

    found: list[Path] = []
    for top, dirs, names in os.walk(root, followlinks=False):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        found += [Path(top, n) for n in names if not n.startswith(".")]
    return [p for p in found if p.is_file()]


def _glob(pattern: str) -> list[Path]:
    """`DIR/**/*.yaml` and the like, by walking the pattern's fixed prefix with `_walk`."""
    import re

    parts = pattern.split("/")
    fixed = 0
    while fixed < len(parts) - 1 and not _GLOB & set(parts[fixed]):
        fixed += 1
    root = "/".join(parts[:fixed]) or ("/" if pattern.startswith("/") else ".")
    regex = ""
    tail = parts[fixed:]
    for i, part in enumerate(tail):
        last = i == len(tail) - 1
        if part == "**":
            regex += ".*" if last else "(?:[^/]+/)*"
        else:
            regex += _component_regex(part) + ("" if last else "/")
    rest = re.compile(regex)
    base = Path(root)
    if not base.is_dir():
        return []
    return sorted(
        p for p in _walk(base) if rest.fullmatch(p.relative_to(base).as_posix()) is not None
    )


def _component_regex(part: str) -> str:
    import re

    out = ""
    i = 0
    while i < len(part):
        c = part[i]
        end = part.find("]", i + 1)
        if c == "*":
            out += "[^/]*"
        elif c == "?":
            out += "[^/]"
        elif c == "[" and end > i:
            out += "[" + part[i + 1 : end].replace("!", "^", 1) + "]"
            i = end
        else:
            out += re.escape(c)
        i += 1
    return out


def check_paths(paths: Iterable[Path], config_repo: Path | None = None) -> list[Problem]:
    """Every problem of every file, sorted by file, line and column. With `config_repo`, each
    spec is also checked against the role it phones home for (vmprep.spec.roles)."""
    from vmprep.spec.load import load_file
    from vmprep.spec.pipeline import check_loaded

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
