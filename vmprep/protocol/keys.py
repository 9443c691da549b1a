"""Ed25519 public keys in the forms docs/protocol.md fixes ("The signature").

- The public form: `ed25519:<standard base64, padded, of the 32 raw bytes>`, what
  `agent.phone_home.trusted_keys` takes and `vmprep keygen` prints.
- The key id: the first 16 characters of the lower-case hex SHA-256 of the 32 raw bytes, what
  a `Vmprep-Signature` entry's `keyid` names.

Only the forms: signing is the server's (`cryptography`), verifying the agent's (vendored
python-ecdsa), and whether 32 bytes are a usable curve point is the verifier's question.
"""

from __future__ import annotations

import base64
import hashlib
import re

PREFIX = "ed25519:"
_B64_32 = re.compile(r"[A-Za-z0-9+/]{43}=")  # standard base64 of exactly 32 bytes, padded


def key_id(raw_public: bytes) -> str:
    """The first 16 lower-case hex characters of SHA-256 over the 32 raw public key bytes."""
    return hashlib.sha256(raw_public).hexdigest()[:16]


def public_form(raw_public: bytes) -> str:
    """`ed25519:<standard base64 with padding>`."""
    return PREFIX + base64.b64encode(raw_public).decode("ascii")


def raw_public_key(text: object) -> bytes | None:
    """The 32 raw bytes of a key in the public form, or None when `text` is not that form."""
    if not isinstance(text, str) or not text.startswith(PREFIX):
        return None
    body = text[len(PREFIX) :]
    if not _B64_32.fullmatch(body):
        return None
    return base64.b64decode(body, validate=True)
