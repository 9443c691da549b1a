"""Cloud attestation of the instances that fetch configs (issue #15; docs/attestation.md).

`Attestor` verifies a `Vmprep-Attestation` header's document against the configured trust
anchors (common, cms, azure, aws, gce, anchors, jwks); `admit` (admit.py) applies a role's
`attestation` mode: the nonce, the instance id, the allow-list and the per-instance binding.
Imported only by `vmprep serve` (cryptography and asn1crypto are the `server` extra).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from vmprep.server.attestation import aws, azure, gce
from vmprep.server.attestation.anchors import Anchors, load_anchors
from vmprep.server.attestation.common import (
    HEADER,
    AttestationError,
    Evidence,
    Verified,
    parse_header,
)
from vmprep.server.attestation.jwks import JwksCache

__all__ = [
    "HEADER",
    "AttestationError",
    "Attestor",
    "Evidence",
    "Verified",
    "load_anchors",
    "parse_header",
]

DEFAULT_SKEW = 300.0
DEFAULT_AWS_MAX_AGE = 6 * 3600.0


@dataclass
class Attestor:
    """What this service trusts, and how much slack it gives clocks and AWS documents.

    `audiences`: this service's base URL(s) as agents have them (the `aud` a GCE token must
    carry); `jwks`: Google's keys fetched from a configured URL, besides the anchors'."""

    anchors: Anchors = field(default_factory=Anchors)
    audiences: tuple[str, ...] = ()
    jwks: JwksCache | None = None
    skew: float = DEFAULT_SKEW
    aws_max_age: float = DEFAULT_AWS_MAX_AGE
    clock: Callable[[], float] = time.time

    def verify(self, evidence: Evidence) -> Verified:
        """The verified claims, or AttestationError (malformed or invalid)."""
        now = self.clock()
        if evidence.kind == azure.KIND:
            return azure.verify(evidence.raw, self.anchors, now, self.skew)
        if evidence.kind == aws.KIND:
            return aws.verify(evidence.raw, self.anchors, now, self.skew, self.aws_max_age)
        keys = list(self.anchors.gce)
        if self.jwks is not None:
            keys += self.jwks.keys(_kid(evidence.raw))
        return gce.verify(evidence.raw, keys, self.audiences, now, self.skew)


def _kid(raw: bytes) -> str | None:
    """The JWT header's key id, for the JWKS cache (verification parses it again)."""
    import base64
    import json

    try:
        head = raw.split(b".", 1)[0]
        value = json.loads(base64.urlsafe_b64decode(head + b"=" * (-len(head) % 4)))
    except (ValueError, UnicodeDecodeError):
        return None
    kid = value.get("kid") if isinstance(value, dict) else None
    return kid if isinstance(kid, str) else None
