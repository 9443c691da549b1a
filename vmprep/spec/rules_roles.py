"""Checks only a config-repository file (`kind: RoleConfig`) has: what the config service
needs to serve it. They run in `vmprep validate` and when `vmprep serve` / `vmprep publish`
load the repository (vmprep/server/repo.py), so the two never disagree about a role file."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from vmprep.spec.checks import Doc, Finding, check
from vmprep.spec.load import JsonPath
from vmprep.spec.rules_secrets import REMOTE_JOIN_SECRETS, secret_refs

MIN_TTL = 60  # seconds; docs/server.md: a served document is valid for at least a minute
_RESOLVED_HERE = "a config repository resolves secrets itself: use {env: NAME} or {file: path}"


@check("ttl", "roleConfig")
def ttl(doc: Doc) -> Iterator[Finding]:
    """A served document's validity: at least MIN_TTL seconds."""
    from vmprep.protocol.durations import parse_duration

    if parse_duration(doc.data["ttl"]) < MIN_TTL:
        yield Finding(("ttl",), f"ttl must be at least {MIN_TTL} seconds")


@check("secret-reference", "roleConfig")
def secret_reference(doc: Doc) -> Iterator[Finding]:
    """Declared secrets are resolved by the service ({env}/{file}); steps name them
    ({secret: NAME}), never carry a value or a reference the image would keep."""
    declared: list[tuple[JsonPath, dict[str, Any]]] = [
        (("secrets",), doc.data["secrets"]),
        *(
            (("instances", i, "secrets"), inst.get("secrets", {}))
            for i, inst in enumerate(doc.data["instances"])
        ),
    ]
    for where, refs in declared:
        for name, ref in refs.items():
            if "secret" in ref:
                yield Finding((*where, name), _RESOLVED_HERE)
    for step_path, step in doc.steps():
        for path, ref in secret_refs(step, step_path):
            if "secret" not in ref:
                yield Finding(
                    path,
                    "steps reference secrets by name: {secret: NAME}",
                    hint="declare the value under `secrets:` and use {secret: NAME} here",
                )


@check("undeclared-secret", "roleConfig")
def undeclared_secret(doc: Doc) -> Iterator[Finding]:
    """A role-wide step cannot use a secret declared only for an instance (`secret-ref`
    reports names declared nowhere in the file)."""
    declared = set(doc.data["secrets"])
    for i, step in enumerate(doc.data["steps"]):
        step_path: JsonPath = ("steps", i)
        needed = [(p, r["secret"]) for p, r in secret_refs(step, step_path) if "secret" in r]
        if step.get("join_domain", {}).get("credentials") == "remote":
            cred = (*step_path, "join_domain", "credentials")
            needed += [(cred, name) for name in REMOTE_JOIN_SECRETS]
        for path, name in needed:
            if name not in declared and any(
                name in inst.get("secrets", {}) for inst in doc.data["instances"]
            ):
                yield Finding(
                    path,
                    f"secret {name!r} is not declared under the role's `secrets:`",
                    hint="a secret under instances: serves only that instance's steps",
                )


@check("attestation", "roleConfig")
def attestation_allow_without_attestation(doc: Doc) -> Iterator[Finding]:
    """An allow-list only narrows a verified attestation (docs/attestation.md)."""
    if doc.data.get("attestation_allow") and doc.data.get("attestation", "off") == "off":
        yield Finding(
            ("attestation_allow",),
            "attestation_allow has no effect while attestation is off",
            hint="set `attestation: required` (or optional), or drop attestation_allow",
        )
