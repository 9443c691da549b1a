"""GCE instance identity token (`.../service-accounts/default/identity?audience=...&format=full`).

https://cloud.google.com/compute/docs/instances/verifying-instance-identity: an RS256 JWT
signed by Google (`iss` https://accounts.google.com), `aud` the audience the instance asked
for (here: this service's base URL), `exp`/`iat`, and with format=full `google.compute_engine`
with `instance_id`, `project_id`, `zone`. Signature per RFC 7515 (JWS compact form) with
RSASSA-PKCS1-v1_5 SHA-256 (RFC 7518 section 3.3); only RS256 is accepted, never `none`.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding

from vmprep.server.attestation.anchors import JwtKey
from vmprep.server.attestation.common import Verified, invalid, malformed, text

KIND = "gce-iit"
ISSUERS = ("https://accounts.google.com", "accounts.google.com")
_PART = re.compile(r"[A-Za-z0-9_-]+")


def verify(
    raw: bytes, keys: list[JwtKey], audiences: tuple[str, ...], now: float, skew: float
) -> Verified:
    parts = text(raw, "the GCE identity token").strip().split(".")
    if len(parts) != 3 or not all(_PART.fullmatch(p) for p in parts):
        raise malformed("the GCE identity token is not a JWT (three base64url parts)")
    header, claims = _object(parts[0], "header"), _object(parts[1], "claims")
    if header.get("alg") != "RS256":
        raise invalid(f"the GCE identity token's alg {str(header.get('alg'))[:20]!r} is not RS256")
    if not keys:
        raise invalid("this service has no GCE signing keys (--attestation-anchors DIR/gce)")
    kid = header.get("kid")
    named = [k for k in keys if k.kid is not None and k.kid == kid]
    candidates = named or [k for k in keys if k.kid is None]
    signing_input = f"{parts[0]}.{parts[1]}".encode("ascii")
    signature = _b64(parts[2], "signature")
    if not any(_verifies(k, signature, signing_input) for k in candidates):
        raise invalid("the GCE identity token's signature does not verify with a trusted key")
    if claims.get("iss") not in ISSUERS:
        raise invalid(
            f"the GCE identity token's issuer {str(claims.get('iss'))[:60]!r} is not Google"
        )
    if not audiences:
        raise invalid("this service has no --attestation-audience: it cannot check a GCE token")
    if claims.get("aud") not in audiences:
        raise invalid(
            f"the GCE identity token is for audience {str(claims.get('aud'))[:200]!r}, "
            f"not this service ({', '.join(audiences)})"
        )
    exp, iat = _number(claims.get("exp")), _number(claims.get("iat"))
    if exp is None or iat is None:
        raise invalid("the GCE identity token has no numeric exp and iat")
    if exp < now - skew or iat > now + skew:
        raise invalid("the GCE identity token has expired or is not valid yet")
    engine = (
        claims.get("google", {}).get("compute_engine")
        if isinstance(claims.get("google"), dict)
        else None
    )
    if not isinstance(engine, dict):
        raise invalid("the GCE identity token has no google.compute_engine claims (format=full)")
    instance, project = engine.get("instance_id"), engine.get("project_id")
    if not (isinstance(instance, str) and instance and isinstance(project, str) and project):
        raise invalid("the GCE identity token has no instance_id or project_id")
    return Verified(KIND, instance, project, iat)


def _verifies(key: JwtKey, signature: bytes, data: bytes) -> bool:
    try:
        key.key.verify(signature, data, padding.PKCS1v15(), hashes.SHA256())
    except InvalidSignature:
        return False
    return True


def _number(value: Any) -> float | None:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    return None


def _b64(part: str, what: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))
    except (binascii.Error, ValueError):
        raise malformed(f"the GCE identity token's {what} is not base64url") from None


def _object(part: str, what: str) -> dict[str, Any]:
    try:
        value = json.loads(_b64(part, what))
    except (ValueError, UnicodeDecodeError):
        raise malformed(f"the GCE identity token's {what} is not JSON") from None
    if not isinstance(value, dict):
        raise malformed(f"the GCE identity token's {what} is not a JSON object")
    return value
