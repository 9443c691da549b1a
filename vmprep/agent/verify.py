"""Ed25519 signatures over the exact body bytes, as docs/protocol.md "The signature" says.

- A public key is `ed25519:<standard base64, padded, of the 32 raw bytes>`; its key id is the
  first 16 characters of the lower-case hex SHA-256 of those bytes.
- `Vmprep-Signature: keyid=<id>;sig=<base64url, no padding, of the 64-byte signature>`, a
  comma-separated list of such entries. Parameters in any order (names case-insensitive),
  optional spaces around `;`, `,` and `=`, unknown parameters ignored; an entry without both
  `keyid` and `sig`, or with either one twice, is skipped.
- The `.sig` sidecar holds the same entries, one per line (LF or CRLF), blank lines ignored.

The verifier is python-ecdsa (pure Python, vendored into agent.pyz), imported only when a
signature is actually checked.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterable
from dataclasses import dataclass

from vmprep.protocol.keys import PREFIX, key_id, raw_public_key

_B64URL = re.compile(r"[A-Za-z0-9_-]{86}")


@dataclass(frozen=True)
class Entry:
    keyid: str
    sig: str  # as written: base64url without padding


class BadKey(ValueError):
    """A trusted key that is not `ed25519:<base64 of 32 bytes>`."""


def parse_key(text: str) -> bytes:
    """The 32 raw bytes of an `ed25519:...` key; `BadKey` otherwise."""
    if not isinstance(text, str) or not text.startswith(PREFIX):
        raise BadKey(f"a trusted key must start with {PREFIX!r}")
    raw = raw_public_key(text)
    if raw is None:
        raise BadKey("a trusted key must be standard base64 (padded) of 32 bytes")
    if _weak(raw):
        raise BadKey("a trusted key must be a valid Ed25519 point of large order")
    return raw


def _weak(raw: bytes) -> bool:
    """Not a curve point, or one of small order: such a key "verifies" forged signatures."""
    from ecdsa import VerifyingKey
    from ecdsa.curves import Ed25519
    from ecdsa.ellipticcurve import INFINITY

    try:
        point = VerifyingKey.from_string(raw, curve=Ed25519).pubkey.point
    except Exception:  # noqa: BLE001 - python-ecdsa raises several kinds for a bad point
        return True
    return bool(point * 8 == INFINITY)


def trusted_keys(texts: Iterable[str]) -> dict[str, bytes]:
    """{key id: raw key} for agent.json's `trusted_keys`."""
    keys: dict[str, bytes] = {}
    for text in texts:
        raw = parse_key(text)
        keys[key_id(raw)] = raw
    return keys


def _entry(text: str) -> Entry | None:
    params: dict[str, str] = {}
    for part in text.split(";"):
        name, eq, value = part.partition("=")
        name = name.strip().lower()
        if not eq or name not in ("keyid", "sig"):
            continue  # unknown parameters are ignored
        if name in params:
            return None  # a repeated keyid or sig is ambiguous: skipped rather than guessed
        params[name] = value.strip()
    if "keyid" not in params or "sig" not in params:
        return None
    return Entry(params["keyid"], params["sig"])


def parse_header(value: str) -> list[Entry]:
    """The usable entries of a `Vmprep-Signature` header value (possibly joined by proxies)."""
    return [e for e in (_entry(item) for item in value.split(",")) if e is not None]


def parse_sidecar(body: bytes) -> list[Entry]:
    """Entries of a `.sig` sidecar; ValueError for a byte-order mark or non-UTF-8 bytes."""
    if body.startswith(b"\xef\xbb\xbf"):
        raise ValueError("the signature file starts with a byte-order mark")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise ValueError("the signature file is not UTF-8") from None
    entries: list[Entry] = []
    for line in text.split("\n"):
        line = line.removesuffix("\r")
        if line.strip():
            entries.extend(parse_header(line))
    return entries


def decode_sig(text: str) -> bytes | None:
    """64 signature bytes from base64url without padding, or None."""
    if not _B64URL.fullmatch(text):
        return None
    try:
        raw = base64.urlsafe_b64decode(text + "==")
    except (binascii.Error, ValueError):
        return None
    return raw if len(raw) == 64 else None


def verify(body: bytes, entries: Iterable[Entry], keys: dict[str, bytes]) -> str | None:
    """The key id of the first entry that verifies `body` against a trusted key, else None."""
    for entry in entries:
        raw = keys.get(entry.keyid.lower())
        sig = decode_sig(entry.sig)
        if raw is None or sig is None or _weak(raw):
            continue
        if _verify_one(raw, sig, body):
            return entry.keyid
    return None


def _verify_one(raw: bytes, sig: bytes, body: bytes) -> bool:
    from ecdsa import BadSignatureError, VerifyingKey
    from ecdsa.curves import Ed25519

    try:
        key = VerifyingKey.from_string(raw, curve=Ed25519)
        return bool(key.verify(sig, body))
    except BadSignatureError:
        return False
    except Exception:  # noqa: BLE001 - python-ecdsa raises several kinds for a bad point
        return False
