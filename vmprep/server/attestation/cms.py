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


# Azure IMDS puts the *signature* OID sha256WithRSAEncryption where RFC 5652 wants a digest
# algorithm (Microsoft's sample document does; OpenSSL accepts it): read it as its hash.
_DIGEST_OIDS = {
    "1.2.840.113549.1.1.11": "sha256",
    "1.2.840.113549.1.1.12": "sha384",
    "1.2.840.113549.1.1.13": "sha512",
}


@dataclass(frozen=True)
class SignedData:
    """What verification needs of a SignedData, read out while parsing (so that a damaged
    field is attestation-malformed there, never an exception later)."""

    content: bytes
    certificates: list[x509.Certificate]  # those the SignedData carries (maybe none)
    sid: Any  # asn1crypto SignerIdentifier
    digest: str  # the signer's digest algorithm (asn1crypto name)
    signature_algo: str  # "rsassa_pkcs1v15", "rsassa_pss", "ecdsa", ...
    signature_hash: str | None  # the hash a combined OID names (sha256_rsa), else None
    signature: bytes
    signed_attrs: bytes | None  # their DER as a SET OF: what the signature covers
    attributes: dict[str, list[Any]]


def parse(der: bytes, what: str) -> SignedData:
    """Read a DER (or BER) ContentInfo holding a SignedData with attached content and one
    signer. Anything else is attestation-malformed (nothing is trusted yet)."""
    from asn1crypto import cms

    try:
        info = cms.ContentInfo.load(der, strict=True)
        if info["content_type"].native != "signed_data":
            raise malformed(f"{what}: not a CMS SignedData")
        signed = info["content"]
        encap = signed["encap_content_info"]
        content = encap["content"].native if encap["content_type"].native == "data" else None
        if not isinstance(content, bytes):
            raise malformed(f"{what}: the SignedData carries no attached data content")
        signers = signed["signer_infos"]
        if len(signers) != 1:
            raise malformed(f"{what}: expected one signer, found {len(signers)}")
        certificates = [
            x509.load_der_x509_certificate(choice.chosen.dump())
            for choice in signed["certificates"] or ()
            if choice.name == "certificate"
        ]
        si = signers[0]
        sig_algo = si["signature_algorithm"]
        combined = sig_algo["algorithm"].native != sig_algo.signature_algo
        attrs = si["signed_attrs"]
        attributes: dict[str, list[Any]] = {}
        for attr in attrs if attrs.native else ():
            attributes.setdefault(str(attr["type"].native), []).extend(attr["values"].native)
        result = SignedData(
            content=content,
            certificates=certificates,
            sid=si["sid"],
            digest=_digest_name(si["digest_algorithm"]["algorithm"]),
            signature_algo=str(sig_algo.signature_algo),
            signature_hash=str(sig_algo.hash_algo) if combined else None,
            signature=bytes(si["signature"].native),
            signed_attrs=attrs.untag().dump() if attrs.native else None,
            attributes=attributes,
        )
        result.sid.native  # noqa: B018 -- parse it now: a damaged one is malformed input
    except (ValueError, TypeError, KeyError, IndexError, OverflowError) as exc:
        raise malformed(f"{what}: not a CMS SignedData ({_short(exc)})") from None
    return result


def signer_matches(signed: SignedData, cert: x509.Certificate) -> bool:
    """Whether `cert` is the one the SignerInfo names (issuer + serial, or key identifier)."""
    from asn1crypto import x509 as asn1_x509
    from cryptography.hazmat.primitives.serialization import Encoding

    sid = signed.sid
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
    if signed.digest not in _HASHES:
        raise invalid(f"{what}: digest algorithm {signed.digest!r} is not accepted")
    algorithm = _HASHES[signed.digest]()
    if signed.signature_algo != "rsassa_pkcs1v15":
        raise invalid(f"{what}: signature algorithm {signed.signature_algo!r} is not RSA")
    if signed.signature_hash not in (None, signed.digest):
        raise invalid(f"{what}: the signature's digest differs from the signer's")
    key = cert.public_key()
    if not isinstance(key, rsa.RSAPublicKey):
        raise invalid(f"{what}: the signer's key is not RSA")
    data = signed.content
    if signed.signed_attrs is not None:
        if signed.attributes.get("content_type") != ["data"]:
            raise invalid(f"{what}: the signed content-type attribute is not data")
        h = hashes.Hash(algorithm)
        h.update(signed.content)
        if signed.attributes.get("message_digest") != [h.finalize()]:
            raise invalid(f"{what}: the content does not match the signed message digest")
        data = signed.signed_attrs
    try:
        key.verify(signed.signature, data, padding.PKCS1v15(), algorithm)
    except InvalidSignature:
        raise invalid(f"{what}: the signature does not verify") from None


def _digest_name(oid: Any) -> str:
    return _DIGEST_OIDS.get(oid.dotted, str(oid.native))


def _short(exc: Exception) -> str:
    return str(exc).splitlines()[0][:120] if str(exc) else type(exc).__name__
