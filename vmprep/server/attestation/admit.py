"""A role's `attestation` mode applied to one config request (docs/attestation.md).

- `off`: the header is ignored. `optional`: verified when present (a failure refuses),
  served as before when absent. `required`: the whole document is served only after a
  verified attestation.
- Azure: the document's nonce must be one this service issued to the URL's instance id,
  unexpired, and is consumed here (single use, whatever follows).
- The attested instance id must be the URL's (Azure's vmId compared in lower case, as the
  agent's identity sources write UUIDs); the subscription/account/project must be in the
  role's `attestation_allow` when it has one (a cloud it does not list is refused).
- Per-instance binding: an instance admitted before must attest with the same kind and
  subscription/account/project; for AWS, a document older than the one that admitted the
  instance (pendingTime) is a replay. The store records every admission.
"""

from __future__ import annotations

from vmprep.server.attestation import Attestor
from vmprep.server.attestation.common import (
    MISMATCH,
    NONCE,
    NOT_ALLOWED,
    REQUIRED,
    AttestationError,
    invalid,
    parse_header,
)
from vmprep.server.repo import Role
from vmprep.server.store import Attestation, Store

ALLOW_KEY = {"azure-imds": "subscriptions", "aws-iid": "accounts", "gce-iit": "projects"}
WHAT = {"azure-imds": "subscription", "aws-iid": "account", "gce-iit": "project"}


def admit(
    role: Role,
    instance_id: str,
    header: str | None,
    attestor: Attestor | None,
    store: Store,
    now: float,
    *,
    role_wide: bool = False,
) -> Attestation | None:
    """The recorded admission, None when the role does not ask for one (or it is optional
    and absent); AttestationError otherwise. `role_wide`: the `_role` target, which no
    instance can attest for."""
    if role.attestation == "off":
        return None
    if header is None:
        if role.attestation == "required":
            raise AttestationError(
                REQUIRED,
                f"role {role.name!r} serves its configs only to instances that prove who they "
                "are with a Vmprep-Attestation header",
            )
        return None
    evidence = parse_header(header)
    if attestor is None:
        raise invalid("this service has no trust anchors configured (--attestation-anchors)")
    verified = attestor.verify(evidence)
    if verified.kind == "azure-imds":
        issued_to = store.take_nonce(verified.nonce, now) if verified.nonce else None
        if issued_to is None or issued_to != instance_id:
            raise AttestationError(
                NONCE,
                "the Azure document's nonce is unknown, expired, used or issued to another "
                "instance: get a new one from /v1/attestation/challenge",
            )
    wanted = instance_id.lower() if verified.kind == "azure-imds" else instance_id
    if role_wide or verified.instance_id != wanted:
        raise AttestationError(
            MISMATCH,
            f"the attestation is for instance {verified.instance_id!r}, not {instance_id!r}",
        )
    allowed = role.attestation_allow
    if allowed and verified.scope not in allowed.get(ALLOW_KEY[verified.kind], frozenset()):
        raise AttestationError(
            NOT_ALLOWED,
            f"{WHAT[verified.kind]} {verified.scope!r} is not in role {role.name!r}'s "
            "attestation_allow",
        )
    before = store.attestation(instance_id)
    if before is not None and (before.kind, before.scope) != (verified.kind, verified.scope):
        raise AttestationError(
            MISMATCH,
            f"instance {instance_id!r} was admitted by {before.kind} for {WHAT[before.kind]} "
            f"{before.scope!r}; this attestation is {verified.kind} for {verified.scope!r}",
        )
    if before is not None and verified.kind == "aws-iid" and verified.issued_at < before.issued_at:
        raise invalid(
            "the AWS document is older (pendingTime) than the one that admitted this instance: "
            "a replay"
        )
    return store.add_attestation(
        Attestation(
            instance_id=instance_id,
            role=role.name,
            kind=verified.kind,
            attested_id=verified.instance_id,
            scope=verified.scope,
            issued_at=verified.issued_at,
            first_at=now,
            last_at=now,
        )
    )
