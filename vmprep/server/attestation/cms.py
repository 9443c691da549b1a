"""CMS (PKCS #7) SignedData with attached content, as Azure IMDS and AWS sign their documents.

The `cryptography` release this runs on has no public API that verifies a SignedData, so the
structure is read with `asn1crypto` (a well-kept DER parser, never hand-rolled here) and the
signature checked with `cryptography`, as RFC 5652 section 5.4 says: with signed attributes,
the signature covers their DER encoding as a SET OF (explicit tag 0x31, not the [0] implicit
tag they travel under) and the `message-digest` attribute must equal the content's digest;
without them, it covers the content itself.
https://www.rfc-editor.org/rfc/rfc5652#section-5.4
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from vmprep.server.attestation.common import invalid, malformed

# SHA-1 is refused: both clouds sign with SHA-256 (AWS's rsa2048; Azure's attested data).
_HASHES: dict[str, Callable[[], hashes.HashAlgorithm]] = {
    "sha256": hashes.SHA256,
    "sha384": hashes.SHA384,
    "sha512": hashes.SHA512,
}


@dataclass(frozen=True)
class SignedData:
    content: bytes
    certificates: list[x509.Certificate]  # those the SignedData carries (maybe none)
    signer: Any  # asn1crypto SignerInfo


def parse(der: bytes, what: str) -> SignedData:
    """Read a DER ContentInfo holding a SignedData with attached content and one signer.
    Anything else is attestation-malformed (nothing is trusted yet)."""
    from asn1crypto import cms

    try:
        info = cms.ContentInfo.load(der, strict=True)
        if info["content_type"].native != "signed_data":
            raise malformed(f"{what}: not a CMS SignedData")
        signed = info["content"]
        encap = signed["encap_content_info"]
        if encap["content_type"].native != "data" or encap["content"].native is None:
            raise malformed(f"{what}: the SignedData carries no attached data content")
        content = encap["content"].native
        signers = signed["signer_infos"]
        if len(signers) != 1:
            raise malformed(f"{what}: expected one signer, found {len(signers)}")
        certificates = [
            x509.load_der_x509_certificate(choice.chosen.dump())
            for choice in signed["certificates"] or ()
            if choice.name == "certificate"
        ]
        signer = signers[0]
        signer.native  # noqa: B018 -- parse every field now: a bad one is malformed input
    except (ValueError, TypeError, KeyError, IndexError, OverflowError) as exc:
        raise malformed(f"{what}: not a DER CMS SignedData ({_short(exc)})") from None
    if not isinstance(content, bytes):
        raise malformed(f"{what}: the SignedData's content is not an octet string")
    return SignedData(content, certificates, signer)


def signer_matches(signed: SignedData, cert: x509.Certificate) -> bool:
    """Whether `cert` is the one the SignerInfo names (issuer + serial, or key identifier)."""
    from asn1crypto import x509 as asn1_x509
    from cryptography.hazmat.primitives.serialization import Encoding

    sid = signed.signer["sid"]
    if sid.name == "issuer_and_serial_number":
        if cert.serial_number != sid.chosen["serial_number"].native:
            return False
        parsed = asn1_x509.Certificate.load(cert.public_bytes(Encoding.DER))
        return bool(parsed.issuer == sid.chosen["issuer"])
    try:
        ski = cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
    except x509.ExtensionNotFound:
        return False
    return bool(ski == sid.chosen.native)


def find_signer(signed: SignedData, candidates: Iterable[x509.Certificate]) -> x509.Certificate:
    for cert in candidates:
        if signer_matches(signed, cert):
            return cert
    raise invalid("the document's signer is not a trusted certificate")


def verify_signature(signed: SignedData, cert: x509.Certificate, what: str) -> None:
    """RSA PKCS #1 v1.5 over the signed attributes (checking their message digest) or the
    content; attestation-invalid when it does not verify."""
    si = signed.signer
    digest_name = si["digest_algorithm"]["algorithm"].native
    if digest_name not in _HASHES:
        raise invalid(f"{what}: digest algorithm {digest_name!r} is not accepted")
    algorithm = _HASHES[digest_name]()
    sig_algo = si["signature_algorithm"]
    if sig_algo.signature_algo != "rsassa_pkcs1v15":
        raise invalid(f"{what}: signature algorithm {sig_algo['algorithm'].native!r} is not RSA")
    if sig_algo["algorithm"].native != "rsassa_pkcs1v15" and sig_algo.hash_algo != digest_name:
        raise invalid(f"{what}: the signature's digest differs from the signer's")
    key = cert.public_key()
    if not isinstance(key, rsa.RSAPublicKey):
        raise invalid(f"{what}: the signer's key is not RSA")
    attrs = si["signed_attrs"]
    if attrs.native:
        _check_attributes(attrs, signed.content, algorithm, what)
        data = attrs.untag().dump()
    else:
        data = signed.content
    try:
        key.verify(si["signature"].native, data, padding.PKCS1v15(), algorithm)
    except InvalidSignature:
        raise invalid(f"{what}: the signature does not verify") from None


def _check_attributes(
    attrs: Any, content: bytes, algorithm: hashes.HashAlgorithm, what: str
) -> None:
    found: dict[str, list[Any]] = {}
    for attr in attrs:
        found.setdefault(attr["type"].native, []).extend(attr["values"].native)
    if found.get("content_type") != ["data"]:
        raise invalid(f"{what}: the signed content-type attribute is not data")
    h = hashes.Hash(algorithm)
    h.update(content)
    if found.get("message_digest") != [h.finalize()]:
        raise invalid(f"{what}: the content does not match the signed message digest")


def _short(exc: Exception) -> str:
    return str(exc).splitlines()[0][:120] if str(exc) else type(exc).__name__
