"""Trust anchors: what the operator trusts each cloud to sign with, read from a directory.

    ANCHORS/azure/*.pem   Azure IMDS: the root CA(s) (self-signed) and the intermediate CA(s)
                          that issue the metadata.azure.com certificate (IMDS does not send
                          them; they are listed on Microsoft's "Azure Certificate Authority
                          details" page)
    ANCHORS/aws/*.pem     AWS: the RSA-2048 certificate of each region instances run in
    ANCHORS/gce/*.pem     GCE: Google's token-signing certificates or public keys (PEM), and/or
    ANCHORS/gce/*.json    the JSON of https://www.googleapis.com/oauth2/v1/certs (key id ->
                          PEM certificate) or of .../oauth2/v3/certs (a JWKS)

`.crt` is read like `.pem`; other files (a README) are ignored. A cloud without a directory
accepts no attestation. Nothing is fetched here (docs/attestation.md: set-up per cloud).
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from vmprep.errors import InputError

CLOUDS = ("azure", "aws", "gce")
MAX_FILE = 1024 * 1024


class KeySetError(ValueError):
    """A key set file or answer that is not one of Google's two forms."""


@dataclass(frozen=True)
class JwtKey:
    kid: str | None  # None: a PEM file, tried for any key id
    key: rsa.RSAPublicKey


@dataclass(frozen=True)
class Anchors:
    azure_roots: list[x509.Certificate] = field(default_factory=list)
    azure_intermediates: list[x509.Certificate] = field(default_factory=list)
    aws: list[x509.Certificate] = field(default_factory=list)
    gce: list[JwtKey] = field(default_factory=list)


def load_anchors(root: Path) -> Anchors:
    if not root.is_dir():
        raise InputError(f"{root}: not a directory", hint="--attestation-anchors takes a directory")
    present = [c for c in CLOUDS if (root / c).is_dir()]
    if not present:
        raise InputError(
            f"{root}: no azure/, aws/ or gce/ directory of trust anchors",
            hint="docs/attestation.md says which files go where",
        )
    azure = [c for p in _files(root / "azure", (".pem", ".crt")) for c in _certs(p)]
    roots = [c for c in azure if c.issuer == c.subject]
    gce: list[JwtKey] = []
    for path in _files(root / "gce", (".pem", ".crt", ".json")):
        gce.extend(_json_keys(path) if path.suffix == ".json" else _pem_keys(path))
    anchors = Anchors(
        azure_roots=roots,
        azure_intermediates=[c for c in azure if c.issuer != c.subject],
        aws=[c for p in _files(root / "aws", (".pem", ".crt")) for c in _certs(p)],
        gce=gce,
    )
    if (root / "azure").is_dir() and not roots:
        raise InputError(f"{root / 'azure'}: no self-signed root certificate among the files")
    return anchors


def _files(folder: Path, suffixes: tuple[str, ...]) -> list[Path]:
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in suffixes and p.is_file())


def _read(path: Path) -> bytes:
    try:
        if path.stat().st_size > MAX_FILE:
            raise InputError(f"{path}: larger than {MAX_FILE} bytes: not a trust anchor file")
        return path.read_bytes()
    except OSError as exc:
        raise InputError(f"{path}: cannot read: {exc}") from None


def _certs(path: Path) -> list[x509.Certificate]:
    try:
        certs = x509.load_pem_x509_certificates(_read(path))
    except ValueError as exc:
        raise InputError(
            f"{path}: not PEM certificates ({exc})",
            hint="one or more -----BEGIN CERTIFICATE----- blocks",
        ) from None
    return certs


def _rsa(key: Any, path: Path) -> rsa.RSAPublicKey:
    if not isinstance(key, rsa.RSAPublicKey):
        raise InputError(f"{path}: not an RSA key (GCE identity tokens are RS256)")
    return key


def _pem_keys(path: Path) -> list[JwtKey]:
    data = _read(path)
    if b"BEGIN CERTIFICATE" in data:
        return [JwtKey(None, _rsa(c.public_key(), path)) for c in _certs(path)]
    try:
        return [JwtKey(None, _rsa(load_pem_public_key(data), path))]
    except ValueError as exc:
        raise InputError(f"{path}: not a PEM certificate or public key ({exc})") from None


def _json_keys(path: Path) -> list[JwtKey]:
    try:
        return parse_key_set(_read(path))
    except ValueError as exc:
        raise InputError(f"{path}: {exc}") from None


def parse_key_set(data: bytes) -> list[JwtKey]:
    """Google's key sets: a JWKS (`{"keys": [...]}`, oauth2/v3/certs) or a map of key id to
    PEM certificate (oauth2/v1/certs). ValueError when it is neither."""
    try:
        doc = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValueError(f"not JSON ({exc})") from None
    if not isinstance(doc, dict):
        raise KeySetError("expected a JSON object")
    if isinstance(doc.get("keys"), list):
        return [k for k in map(_jwk, doc["keys"]) if k is not None]
    keys = []
    for kid, pem in doc.items():
        if not isinstance(pem, str):
            raise KeySetError(f"key {kid!r}: expected a PEM certificate string")
        cert = x509.load_pem_x509_certificate(pem.encode())
        key = cert.public_key()
        if isinstance(key, rsa.RSAPublicKey):
            keys.append(JwtKey(kid, key))
    return keys


def _jwk(jwk: Any) -> JwtKey | None:
    """An RSA signing key of a JWKS (RFC 7517/7518 section 6.3.1); others are skipped."""
    if not isinstance(jwk, dict) or jwk.get("kty") != "RSA" or jwk.get("use", "sig") != "sig":
        return None
    kid, n, e = jwk.get("kid"), jwk.get("n"), jwk.get("e")
    if not (isinstance(kid, str) and isinstance(n, str) and isinstance(e, str)):
        raise KeySetError("an RSA key needs string kid, n and e")
    numbers = rsa.RSAPublicNumbers(_uint(e), _uint(n))
    return JwtKey(kid, numbers.public_key())


def _uint(text: str) -> int:
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise ValueError("a JWK number is not base64url") from None
    return int.from_bytes(raw, "big")
