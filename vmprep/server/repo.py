"""The config repository: a directory of `kind: RoleConfig` YAML files, loaded, validated
with the spec's JSON Schema (`$defs/roleConfig`) and checked, with every secret reference
resolved in memory. Resolved values are never written anywhere; they live only in the
`Repository` object and the documents served from it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from vmprep.errors import InputError
from vmprep.problems import Problem, ref_name
from vmprep.protocol.durations import parse_duration
from vmprep.spec.load import JsonPath, Loaded, load_file
from vmprep.spec.roles import yaml_files

if TYPE_CHECKING:  # generated from schema.json (tools/gen_spec_types.py); no run-time cost
    from vmprep.spec.types import RoleConfig

Fingerprint = tuple[tuple[str, int, int], ...]


class RepositoryError(InputError):
    """A config repository with errors; `problems` holds all of them, sorted."""

    def __init__(self, problems: list[Problem]) -> None:
        listing = "\n".join(f"  {p}" for p in problems)
        if any(p.code == "secret" for p in problems):
            hint = (
                "secrets are resolved when the repository loads: set the variable or add the file"
            )
        else:
            hint = "`vmprep validate` shows the same problems for one file"
        super().__init__(f"the config repository has problems:\n{listing}", hint=hint)
        self.problems = problems


@dataclass(frozen=True)
class Override:
    """An `instances:` entry: `kind` is instance_id, mac or name (a computer-name glob)."""

    kind: str
    pattern: str
    variables: dict[str, Any]
    secrets: dict[str, str]
    steps: list[dict[str, Any]]


@dataclass(frozen=True)
class Role:
    name: str
    file: str
    ttl: int
    variables: dict[str, Any]
    secrets: dict[str, str] = field(repr=False)
    steps: list[dict[str, Any]]
    overrides: list[Override]
    attestation: str = "off"  # required | optional | off (docs/attestation.md)
    # subscriptions / accounts / projects -> the ids allowed; empty: any
    attestation_allow: dict[str, frozenset[str]] = field(default_factory=dict)


@dataclass(frozen=True)
class Repository:
    root: Path
    roles: dict[str, Role]
    fingerprint: Fingerprint
    secret_files: tuple[Path, ...] = ()


def fingerprint(root: Path, extra: tuple[Path, ...] = ()) -> Fingerprint:
    """What a reload watches: each file's path, mtime and size (secret files included)."""
    out: list[tuple[str, int, int]] = []
    for p in [*yaml_files(root), *extra]:
        st = _stat(p)
        out.append((str(p), st.st_mtime_ns if st else -1, st.st_size if st else -1))
    return tuple(out)


def _stat(path: Path) -> os.stat_result | None:
    try:
        return path.stat()
    except OSError:
        return None


def load_repository(root: Path, environ: dict[str, str] | None = None) -> Repository:
    """Load, validate and resolve a config repository; raise RepositoryError on any problem."""
    if not root.is_dir():
        raise InputError(f"{root}: not a directory", hint="--configs takes the repository's root")
    env = dict(os.environ if environ is None else environ)
    problems: list[Problem] = []
    roles: dict[str, Role] = {}
    secret_files: list[Path] = []
    for path in yaml_files(root):
        role = _load_role(path, env, problems, secret_files)
        if role is None:
            continue
        if role.name in roles:
            line, col = 1, 1
            msg = f"role {role.name!r} is already defined in {roles[role.name].file}"
            problems.append(Problem(str(path), line, col, "duplicate-role", msg))
            continue
        roles[role.name] = role
    if problems:
        raise RepositoryError(sorted(problems))
    files = tuple(dict.fromkeys(secret_files))
    return Repository(root, roles, fingerprint(root, files), files)


def _load_role(
    path: Path, env: dict[str, str], problems: list[Problem], secret_files: list[Path]
) -> Role | None:
    from vmprep.spec.pipeline import check_loaded, definition_for

    # The same schema ($defs/roleConfig) and checks as `vmprep validate` (the RoleConfig-only
    # ones are in vmprep/spec/rules_roles.py). Warnings are for `validate`; errors refuse it.
    loaded = load_file(path)
    found, data = check_loaded(loaded)
    errors = [p for p in found if p.is_error]
    if data is not None and definition_for(data) != "roleConfig":
        msg = "not a RoleConfig file: a config repository holds only `kind: RoleConfig` files"
        errors, data = [Problem(str(path), 1, 1, "kind", msg)], None
    problems.extend(errors)
    if errors or data is None:
        return None
    role = cast("RoleConfig", data)  # schema-valid, defaults applied: mypy checks its keys
    start = len(problems)
    base = path.parent

    def resolve(refs: dict[str, Any], where: JsonPath) -> dict[str, str]:
        out: dict[str, str] = {}
        for name, ref in refs.items():
            value = _resolve(ref, base, env, secret_files)
            if isinstance(value, str):
                out[name] = value
            else:
                problems.append(_problem(loaded, (*where, name), "secret", value[0]))
        return out

    secrets = resolve(role["secrets"], ("secrets",))
    overrides = []
    for i, inst in enumerate(role["instances"]):
        ((kind, pattern),) = inst["match"].items()
        ov_secrets = resolve(inst.get("secrets", {}), ("instances", i, "secrets"))
        match = str(pattern)  # the schema makes every match value a string
        ov = Override(kind, match, inst.get("variables", {}), ov_secrets, inst.get("steps", []))
        overrides.append(ov)
    if len(problems) > start:
        return None
    ttl = int(parse_duration(role["ttl"]))
    listed = cast("dict[str, list[str]]", role.get("attestation_allow", {}))
    allow = {
        key: frozenset(v.lower() if key == "subscriptions" else v for v in values)
        for key, values in listed.items()
    }
    return Role(
        role["role"],
        str(path),
        ttl,
        role["variables"],
        secrets,
        role["steps"],
        overrides,
        role.get("attestation", "off"),
        allow,
    )


def _resolve(
    ref: dict[str, str], base: Path, env: dict[str, str], secret_files: list[Path]
) -> str | tuple[str]:
    """The value of an {env: NAME} or {file: path} reference, or (why not,)."""
    if "env" in ref:
        if ref["env"] not in env:
            return (f"environment variable {ref_name('env', ref['env'])} is not set",)
        return env[ref["env"]]
    path = base / ref["file"]
    secret_files.append(path)
    from vmprep.secretfile import allowed_dirs, read_secret_file

    text, why = read_secret_file(ref["file"], base, allowed_dirs())
    if text is None:
        return (f"secret file: {why}",)
    return text.rstrip("\r\n")  # `echo secret > file` must not put a newline in a password


def _problem(
    loaded: Loaded, path: JsonPath, code: str, msg: str, hint: str | None = None
) -> Problem:
    line, col = loaded.position(path)
    return Problem(loaded.file, line, col, code, msg, path=path, hint=hint)
