"""The config repository: a directory of `kind: RoleConfig` YAML files, loaded, validated
with the spec's JSON Schema (`$defs/roleConfig`) and checked, with every secret reference
resolved in memory. Resolved values are never written anywhere; they live only in the
`Repository` object and the documents served from it.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vmprep.agent.durations import parse_duration
from vmprep.errors import InputError
from vmprep.problems import Problem, ref_name
from vmprep.spec.load import JsonPath, Loaded, load_file
from vmprep.spec.roles import yaml_files
from vmprep.spec.rules_secrets import REMOTE_JOIN_SECRETS, secret_refs

Fingerprint = tuple[tuple[str, int, int], ...]
MIN_TTL = 60


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
    from vmprep.spec.model import check_loaded, definition_for

    # The same schema ($defs/roleConfig) and semantic checks as `vmprep validate`, then the
    # checks only serving needs. Warnings are for `validate`; errors refuse the file.
    loaded = load_file(path)
    found, data = check_loaded(loaded)
    errors = [p for p in found if p.is_error]
    if data is not None and definition_for(data) != "roleConfig":
        msg = "not a RoleConfig file: a config repository holds only `kind: RoleConfig` files"
        errors, data = [Problem(str(path), 1, 1, "kind", msg)], None
    if data is not None:  # schema-valid: the serving checks can look at it too
        errors.extend(_checks(loaded, data))
    problems.extend(errors)
    if errors or data is None:
        return None
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

    secrets = resolve(data["secrets"], ("secrets",))
    overrides = []
    for i, inst in enumerate(data["instances"]):
        ((kind, pattern),) = inst["match"].items()
        ov_secrets = resolve(inst.get("secrets", {}), ("instances", i, "secrets"))
        ov = Override(kind, pattern, inst.get("variables", {}), ov_secrets, inst.get("steps", []))
        overrides.append(ov)
    if len(problems) > start:
        return None
    ttl = int(parse_duration(data["ttl"]))
    allow = {
        key: frozenset(v.lower() if key == "subscriptions" else v for v in values)
        for key, values in data.get("attestation_allow", {}).items()
    }
    return Role(
        data["role"],
        str(path),
        ttl,
        data["variables"],
        secrets,
        data["steps"],
        overrides,
        data.get("attestation", "off"),
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


def _checks(loaded: Loaded, data: dict[str, Any]) -> Iterator[Problem]:
    declared = set(data["secrets"])
    for name, ref in data["secrets"].items():
        if "secret" in ref:
            yield _problem(
                loaded,
                ("secrets", name),
                "secret-reference",
                "a config repository resolves secrets itself: use {env: NAME} or {file: path}",
            )
    if data.get("attestation_allow") and data.get("attestation", "off") == "off":
        yield _problem(
            loaded,
            ("attestation_allow",),
            "attestation",
            "attestation_allow has no effect while attestation is off",
            hint="set `attestation: required` (or optional), or drop attestation_allow",
        )
    if parse_duration(data["ttl"]) < MIN_TTL:
        yield _problem(loaded, ("ttl",), "ttl", f"ttl must be at least {MIN_TTL} seconds")
    everywhere = declared.union(*(i.get("secrets", {}) for i in data["instances"]))
    yield from _step_checks(loaded, data["steps"], ("steps",), declared, everywhere)
    for i, inst in enumerate(data["instances"]):
        where: JsonPath = ("instances", i)
        for name, ref in inst.get("secrets", {}).items():
            if "secret" in ref:
                yield _problem(
                    loaded,
                    (*where, "secrets", name),
                    "secret-reference",
                    "a config repository resolves secrets itself: use {env: NAME} or {file: path}",
                )
        yield from _step_checks(loaded, inst.get("steps", []), (*where, "steps"), None)


def _step_checks(
    loaded: Loaded,
    steps: list[dict[str, Any]],
    where: JsonPath,
    role_secrets: set[str] | None,
    all_secrets: frozenset[str] | set[str] = frozenset(),
) -> Iterator[Problem]:
    """`role_secrets`: for the role's own steps, the secrets they may use. vmprep.spec's
    secret-ref check reports names declared nowhere in the file; this adds that a role step
    cannot use a secret declared only for an instance."""
    for i, step in enumerate(steps):
        needed = [(p, r["secret"]) for p, r in secret_refs(step, (*where, i)) if "secret" in r]
        if step.get("join_domain", {}).get("credentials") == "remote":
            cred = (*where, i, "join_domain", "credentials")
            needed += [(cred, name) for name in REMOTE_JOIN_SECRETS]
        for path, ref in secret_refs(step, (*where, i)):
            if "secret" not in ref:
                yield _problem(
                    loaded,
                    path,
                    "secret-reference",
                    "steps reference secrets by name: {secret: NAME}",
                    hint="declare the value under `secrets:` and use {secret: NAME} here",
                )
        for path, name in needed:
            if role_secrets is not None and name not in role_secrets and name in all_secrets:
                yield _problem(
                    loaded,
                    path,
                    "undeclared-secret",
                    f"secret {name!r} is not declared under the role's `secrets:`",
                    hint="a secret under instances: serves only that instance's steps",
                )
