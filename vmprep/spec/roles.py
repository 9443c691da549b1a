"""`vmprep validate SPEC --config-repo DIR`: a spec checked against the role it phones home
for. Only with a config repository can validate see what the service will deliver: whether
the role exists, declares every secret the baked steps ask for (the service refuses the
config otherwise, docs/protocol.md "Secrets for baked steps"), and whether a baked rename
can be merged with the role's join (rules_order)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vmprep.errors import InputError
from vmprep.problems import Problem, Severity
from vmprep.spec.load import JsonPath, Loaded, load_file
from vmprep.spec.rules_order import message, run_order, unmergeable_renames
from vmprep.spec.rules_secrets import REMOTE_JOIN_SECRETS, secret_refs


def _walk_error(exc: OSError) -> None:
    # os.walk skips a directory it cannot list unless told otherwise: under EMFILE (too many
    # open files) that made a reload see an empty repository and serve no role at all.
    raise InputError(
        f"cannot list the config repository: {exc}",
        hint="a read error never replaces the repository being served; fix it and reload",
    )


def yaml_files(root: Path) -> list[Path]:
    """Every *.yaml / *.yml under root, hidden directories (.git) skipped, in a stable order.
    Raises InputError when a directory cannot be listed (never a silently shorter list)."""
    found: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(root, onerror=_walk_error):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        found.extend(Path(dirpath, f) for f in filenames if f.endswith((".yaml", ".yml")))
    return sorted(found)


@dataclass
class RoleInfo:
    name: str
    file: str
    declared: set[str]
    variables: set[str]
    steps: list[dict[str, Any]]
    for_instances: dict[str, list[str]] = field(default_factory=dict)  # secret -> patterns


def read_roles(root: Path) -> dict[str, RoleInfo]:
    """The valid RoleConfig files under root by role (files with errors are left out: validate
    the repository itself to see them). Secret values are not resolved."""
    from vmprep.spec.pipeline import check_loaded

    roles: dict[str, RoleInfo] = {}
    for path in yaml_files(root):
        _, data = check_loaded(load_file(path))
        if data is None or data.get("kind") != "RoleConfig" or data["role"] in roles:
            continue
        info = RoleInfo(
            data["role"], str(path), set(data["secrets"]), set(data["variables"]), data["steps"]
        )
        for inst in data["instances"]:
            info.variables |= set(inst.get("variables", {}))
            pattern = next(iter(inst["match"].values()))
            for name in inst.get("secrets", {}):
                info.for_instances.setdefault(name, []).append(str(pattern))
        roles[info.name] = info
    return roles


def role_problems(
    loaded: Loaded, data: dict[str, Any], roles: dict[str, RoleInfo], root: Path
) -> Iterator[Problem]:
    """A checked spec's problems with the role it phones home for."""
    ph = data["agent"].get("phone_home")
    if not ph:
        return
    # A role chosen at deploy time (agent.inputs, docs/inputs.md): every value it may take.
    role_input = data["agent"].get("inputs", {}).get("keys", {}).get("role") or {}
    names = list(role_input.get("values") or ([ph["role"]] if ph.get("role") else []))
    for name in names:
        yield from _against(loaded, data, roles, root, name)


def _against(
    loaded: Loaded, data: dict[str, Any], roles: dict[str, RoleInfo], root: Path, role_name: str
) -> Iterator[Problem]:
    role = roles.get(role_name)
    if role is None:
        line, col = loaded.value_position(("agent", "phone_home", "role"))
        msg = f"role {role_name!r} is not in the config repository {root}"
        hint = "add a `kind: RoleConfig` file for it, or fix agent.phone_home.role"
        yield Problem(loaded.file, line, col, "config-repo", msg, hint=hint)
        return
    baked: list[tuple[JsonPath, dict[str, Any]]] = [
        (("agent", "steps", i), s) for i, s in enumerate(data["agent"]["steps"])
    ]
    for path, step in baked:
        needed = [(p, r["secret"]) for p, r in secret_refs(step, path) if "secret" in r]
        if step.get("join_domain", {}).get("credentials") == "remote":
            needed += [((*path, "join_domain", "credentials"), n) for n in REMOTE_JOIN_SECRETS]
        for where, name in needed:
            if name in role.declared:
                continue
            line, col = loaded.value_position(where)
            only = role.for_instances.get(name)
            if only:
                msg = (
                    f"secret {name!r} is declared by role {role.name!r} ({role.file}) only for "
                    f"instances matching {', '.join(only)}: any other instance gets a 409"
                )
                severity = Severity.WARNING
            else:
                msg = (
                    f"secret {name!r} is not declared by role {role.name!r} ({role.file}): the "
                    "service refuses the config (409) and the step has no value"
                )
                severity = Severity.ERROR
            hint = f"declare it under `secrets:` in {role.file}"
            yield Problem(loaded.file, line, col, "role-secret", msg, severity, hint=hint)
    order = run_order(baked, True, role.steps)
    for rpath, step, missing, join in unmergeable_renames(
        order, set(data["agent"]["variables"]), role.variables
    ):
        finding = message(step, missing, join)
        at: JsonPath = ("agent", "phone_home", "role")
        if rpath is not None:
            at = (*rpath, "rename_computer", "name")
        line, col = loaded.value_position(at)
        yield Problem(
            loaded.file,
            line,
            col,
            "rename-after-join",
            finding.message,
            finding.severity,
            hint=finding.hint,
        )
