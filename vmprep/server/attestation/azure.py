"""Azure IMDS attested data (`/metadata/attested/document`).

https://learn.microsoft.com/azure/virtual-machines/instance-metadata-service#attested-data:
the body is `{"encoding": "pkcs7", "signature": "<base64 DER>"}`; the PKCS #7 signature carries
the JSON it signs (`nonce`, `vmId`, `subscriptionId`, `timeStamp.createdOn/expiresOn` as
"MM/DD/YY HH:MM:SS -0000", `plan`, `sku`, `licenseType`), and the signing certificate, issued
for metadata.azure.com (a regional name under it in some regions: SPIRE's `azure_imds`
attestor accepts the domain and its subdomains), chains to Microsoft's CAs (listed on
https://learn.microsoft.com/azure/security/fundamentals/azure-ca-details). IMDS does not send
the intermediate certificate, so it is a configured anchor like the root.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
from typing import Any

from cryptography import x509
from cryptography.x509.oid import NameOID

from vmprep.server.attestation import cms
from vmprep.server.attestation.anchors import Anchors
from vmprep.server.attestation.common import Verified, invalid, malformed, text

KIND = "azure-imds"
DOMAIN = "metadata.azure.com"
TIME_FORMAT = "%m/%d/%y %H:%M:%S %z"


def verify(raw: bytes, anchors: Anchors, now: float, skew: float) -> Verified:
    if not anchors.azure_roots:
        raise invalid("this service has no Azure trust anchors (--attestation-anchors DIR/azure)")
    body = _json(text(raw, "the Azure attested document"), "the Azure attested document")
    signature = body.get("signature")
    if body.get("encoding") != "pkcs7" or not isinstance(signature, str):
        raise malformed(
            'the Azure attested document is not {"encoding": "pkcs7", "signature": ...}'
        )
    try:
        der = base64.b64decode("".join(signature.split()), validate=True)
    except (binascii.Error, ValueError):
        raise malformed("the Azure attested document's signature is not base64") from None
    signed = cms.parse(der, "the Azure attested document")
    leaf = cms.find_signer(signed, signed.certificates)
    _check_chain(leaf, signed.certificates, anchors, now)
    cms.verify_signature(signed, leaf, "the Azure attested document")
    content = _json(text(signed.content, "the Azure signed content"), "the Azure signed content")
    vm_id, subscription, nonce = (content.get(k) for k in ("vmId", "subscriptionId", "nonce"))
    stamp = content.get("timeStamp")
    if not (isinstance(vm_id, str) and vm_id and isinstance(subscription, str)):
        raise invalid("the Azure signed content has no vmId or subscriptionId")
    if not isinstance(stamp, dict):
        raise invalid("the Azure signed content has no timeStamp")
    created = _time(stamp.get("createdOn"))
    expires = _time(stamp.get("expiresOn"))
    if not created - skew <= now <= expires + skew:
        raise invalid(
            f"the Azure document is valid from {stamp.get('createdOn')} to "
            f"{stamp.get('expiresOn')}, not now"
        )
    return Verified(
        KIND,
        vm_id.lower(),
        subscription.lower(),
        created,
        nonce if isinstance(nonce, str) and nonce else None,
    )


def _check_chain(
    leaf: x509.Certificate, carried: list[x509.Certificate], anchors: Anchors, now: float
) -> None:
    """The leaf chains to a configured root (through carried or configured intermediates),
    every certificate valid now, and names metadata.azure.com or a name under it."""
    from cryptography.x509.verification import (
        ExtensionPolicy,
        PolicyBuilder,
        Store,
        VerificationError,
    )

    # The leaf is a TLS server certificate used to sign documents, so the web PKI rules for
    # a TLS *server* name check do not apply to it; the CAs above it keep the web PKI rules.
    verifier = (
        PolicyBuilder()
        .store(Store(anchors.azure_roots))
        .time(dt.datetime.fromtimestamp(now, dt.timezone.utc))
        .max_chain_depth(4)
        .extension_policies(
            ca_policy=ExtensionPolicy.webpki_defaults_ca(), ee_policy=ExtensionPolicy.permit_all()
        )
        .build_client_verifier()
    )
    intermediates = [c for c in carried if c != leaf] + anchors.azure_intermediates
    try:
        verifier.verify(leaf, intermediates)
    except VerificationError as exc:
        raise invalid(
            f"the Azure signing certificate does not chain to a trust anchor: {exc}"
        ) from None
    if not any(n == DOMAIN or n.endswith("." + DOMAIN) for n in _names(leaf)):
        raise invalid(f"the Azure signing certificate is not issued for {DOMAIN}")


def _names(cert: x509.Certificate) -> list[str]:
    names = [str(a.value).lower() for a in cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)]
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        names += [n.lower() for n in san.get_values_for_type(x509.DNSName)]
    except x509.ExtensionNotFound:
        pass
    return names


def _json(value: str, what: str) -> dict[str, Any]:
    try:
        doc = json.loads(value)
    except ValueError:
        raise malformed(f"{what} is not JSON") from None
    if not isinstance(doc, dict):
        raise malformed(f"{what} is not a JSON object")
    return doc


def _time(value: Any) -> float:
    try:
        return dt.datetime.strptime(str(value), TIME_FORMAT).timestamp()
    except ValueError:
        raise invalid(
            f"the Azure timeStamp {str(value)[:40]!r} is not MM/DD/YY HH:MM:SS -0000"
        ) from None
