"""The document the config service would send an instance, built from a config repository
the way `vmprep serve` merges a role and the instance's entry (vmprep.server.documents),
with every secret a `<secret:NAME>` placeholder: no secret is resolved for a plan."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from vmprep.errors import InputError
from vmprep.protocol.timestamps import format_rfc3339


def planned_document(
    root: Path, role_name: str, facts: Any, wanted: list[str]
) -> dict[str, Any] | None:
    from vmprep.protocol.durations import parse_duration
    from vmprep.server.documents import find_override
    from vmprep.server.repo import Override, Role
    from vmprep.spec.model import load_role_config
    from vmprep.spec.roles import read_roles
    from vmprep.spec.rules_secrets import phone_home_secrets

    roles = read_roles(root)
    info = roles.get(role_name)
    if info is None:
        raise InputError(
            f"{root}: no RoleConfig for role {role_name!r} (the service would answer "
            "'no such role')",
            hint=f"roles there: {', '.join(sorted(roles)) or 'none'}",
        )
    data = load_role_config(Path(info.file))

    def placeholders(refs: dict[str, Any]) -> dict[str, str]:
        return {name: f"<secret:{name}>" for name in refs}

    overrides = [
        Override(
            next(iter(inst["match"])),
            next(iter(inst["match"].values())),
            inst.get("variables", {}),
            placeholders(inst.get("secrets", {})),
            inst.get("steps", []),
        )
        for inst in data["instances"]
    ]
    role = Role(
        data["role"],
        info.file,
        int(parse_duration(data["ttl"])),
        data["variables"],
        placeholders(data["secrets"]),
        data["steps"],
        overrides,
    )
    override = find_override(role, facts.instance_id, facts.mac, facts.computer_name)
    variables, secrets, steps = dict(role.variables), dict(role.secrets), list(role.steps)
    if override is not None:
        variables.update(override.variables)
        secrets.update(override.secrets)
        steps += override.steps
    used = phone_home_secrets(steps) | set(wanted)
    target = {"role": role.name}
    if override is not None:
        target["instance_id"] = facts.instance_id
    secrets = {k: v for k, v in secrets.items() if k in used}
    return _document(target, role.ttl, variables, secrets, steps)


def unknown_document(role: str, wanted: list[str]) -> dict[str, Any]:
    """Without a config repository: a role-wide document of no steps that delivers the secrets
    the baked steps ask for (what they need is planned; what the role adds is not known)."""
    secrets = {name: f"<secret:{name}>" for name in wanted}
    return _document({"role": role}, 3600, {}, secrets, [])


def _document(
    target: dict[str, str],
    ttl: int,
    variables: dict[str, Any],
    secrets: dict[str, str],
    steps: list[dict[str, Any]],
) -> dict[str, Any]:
    now = int(time.time())
    return {
        "apiVersion": "vmprep/v1",
        "kind": "InstanceConfig",
        "serial": 1,
        "issued_at": format_rfc3339(now),
        "expires_at": format_rfc3339(now + ttl),
        "target": target,
        "variables": variables,
        "secrets": secrets,
        "steps": steps,
    }
