"""What every cloud's attestation shares: the header, the error codes, the verified result.

The header (docs/protocol.md "Attestation"): `Vmprep-Attestation: <kind> <base64url of the raw
bytes the cloud's metadata service returned>`, at most MAX_HEADER bytes.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass

HEADER = "Vmprep-Attestation"
MAX_HEADER = 16384
KINDS = ("azure-imds", "aws-iid", "gce-iit")
_B64URL = re.compile(r"[A-Za-z0-9_-]*")

# docs/protocol.md "Error codes": (HTTP status, Vmprep-Error value)
REQUIRED = (401, "attestation-required")
MALFORMED = (400, "attestation-malformed")
INVALID = (403, "attestation-invalid")
NONCE = (403, "attestation-nonce")
MISMATCH = (403, "attestation-mismatch")
NOT_ALLOWED = (403, "attestation-not-allowed")


class AttestationError(Exception):
    """A refused attestation: `status` and `code` go on the wire, `message` in the body.
    Messages name what failed, never a secret (there is none at this point)."""

    def __init__(self, kind: tuple[int, str], message: str) -> None:
        super().__init__(message)
        self.status, self.code = kind
        self.message = message


def malformed(message: str) -> AttestationError:
    return AttestationError(MALFORMED, message)


def invalid(message: str) -> AttestationError:
    return AttestationError(INVALID, message)


@dataclass(frozen=True)
class Evidence:
    kind: str
    raw: bytes  # what the metadata service returned


@dataclass(frozen=True)
class Verified:
    """A verified attestation. `scope`: subscription (Azure), account (AWS) or project
    (GCE); `issued_at`: the document's own time, epoch seconds; `nonce`: Azure's, still to
    be consumed against the store."""

    kind: str
    instance_id: str
    scope: str
    issued_at: float
    nonce: str | None = None


def parse_header(value: str) -> Evidence:
    """The header's value, or AttestationError(attestation-malformed)."""
    if len(value.encode("utf-8", "replace")) > MAX_HEADER:
        raise malformed(f"{HEADER} is longer than {MAX_HEADER} bytes")
    kind, _, data = value.strip().partition(" ")
    if kind not in KINDS:
        raise malformed(
            f"{HEADER}: unknown kind {kind[:40]!r} (expected one of {', '.join(KINDS)})"
        )
    data = data.strip()
    if not data or not _B64URL.fullmatch(data) or len(data) % 4 == 1:
        raise malformed(f"{HEADER}: the document is not base64url without padding")
    try:
        raw = base64.urlsafe_b64decode(data + "=" * (-len(data) % 4))
    except (binascii.Error, ValueError):
        raise malformed(f"{HEADER}: the document is not base64url without padding") from None
    return Evidence(kind, raw)


def text(raw: bytes, what: str) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise malformed(f"{what} is not UTF-8") from None
