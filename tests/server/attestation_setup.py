"""Shared set-up of the service-side attestation tests: one set of test clouds per session
(tests/attestation_fakes.py forges their documents), an anchors directory that trusts them,
and the header the agent sends."""

from __future__ import annotations

import datetime as dt
import functools
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.attestation_fakes import Clouds, Issued, b64url

UTC = dt.timezone.utc
AUDIENCE = "https://cfg.test"


@functools.cache
def clouds() -> Clouds:
    return Clouds.make()


@functools.cache
def strangers() -> Clouds:
    """Another set of signers nobody trusts: a forger's own CA and keys."""
    return Clouds.make()


def header(kind: str, raw: bytes) -> dict[str, str]:
    return {"Vmprep-Attestation": f"{kind} {b64url(raw)}"}


def pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def write_anchors(root: Path, c: Clouds | None = None, *, gce_kid: bool = True) -> Path:
    """azure/ (the root), aws/ (the region certificate), gce/ (the key set, v1/certs form
    naming the key id, or a bare public key PEM)."""
    import json

    c = c or clouds()
    for cloud in ("azure", "aws", "gce"):
        (root / cloud).mkdir(parents=True, exist_ok=True)
    (root / "azure" / "root.pem").write_bytes(pem(c.azure_root.cert))
    (root / "aws" / "eu-west-1.pem").write_bytes(pem(c.aws_signer.cert))
    if gce_kid:
        jwks = c.gce_key.jwks()
        (root / "gce" / "google.json").write_text(json.dumps(jwks), encoding="utf-8")
    else:
        (root / "gce" / "google.pem").write_bytes(c.gce_key.public_pem())
    return root


def intermediate_ca(root: Issued, cn: str = "vmprep test Azure TLS Issuing CA 01") -> Issued:
    """A CA below `root`, as Microsoft's issuing CAs sit below their roots (with the key
    identifiers the web PKI rules ask of a CA)."""
    now = dt.datetime.now(UTC)
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(x509.oid.NameOID.COMMON_NAME, cn)])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(root.cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=365))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(True, False, False, False, False, True, True, False, False),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(root.key.public_key()),
            critical=False,
        )
        .sign(root.key, hashes.SHA256())
    )
    return Issued(key, cert, [root.cert])
