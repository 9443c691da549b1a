"""AWS instance identity document, `/latest/dynamic/instance-identity/rsa2048`.

https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/verify-rsa2048.html: base64 of a PKCS #7
SignedData (SHA-256 with RSA) whose attached content is the identity document JSON
(https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/instance-identity-documents.html:
`instanceId`, `accountId`, `region`, `pendingTime`...). It carries no certificate: AWS
publishes one RSA-2048 certificate per region, and the signer must be one of those configured.
The document is static for an instance's run, so it can be replayed; docs/attestation.md says
what limits that (pendingTime's age, the per-instance binding, TLS).
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json

from vmprep.server.attestation import cms
from vmprep.server.attestation.anchors import Anchors
from vmprep.server.attestation.common import Verified, invalid, malformed, text

KIND = "aws-iid"


def verify(raw: bytes, anchors: Anchors, now: float, skew: float, max_age: float) -> Verified:
    if not anchors.aws:
        raise invalid("this service has no AWS trust anchors (--attestation-anchors DIR/aws)")
    body = "".join(text(raw, "the AWS identity document").split())
    for armour in ("-----BEGINPKCS7-----", "-----ENDPKCS7-----"):
        body = body.replace(armour, "")
    try:
        der = base64.b64decode(body, validate=True)
    except (binascii.Error, ValueError):
        raise malformed("the AWS rsa2048 document is not base64") from None
    signed = cms.parse(der, "the AWS identity document")
    cert = cms.find_signer(signed, anchors.aws)  # never a certificate the document brings
    when = dt.datetime.fromtimestamp(now, dt.timezone.utc)
    if not cert.not_valid_before_utc <= when <= cert.not_valid_after_utc:
        raise invalid(f"the AWS certificate {cert.subject.rfc4514_string()} is not valid now")
    cms.verify_signature(signed, cert, "the AWS identity document")
    try:
        doc = json.loads(signed.content)
    except ValueError:
        raise invalid("the AWS signed content is not JSON") from None
    if not isinstance(doc, dict):
        raise invalid("the AWS signed content is not a JSON object")
    instance, account, pending = (doc.get(k) for k in ("instanceId", "accountId", "pendingTime"))
    if not (isinstance(instance, str) and instance and isinstance(account, str) and account):
        raise invalid("the AWS identity document has no instanceId or accountId")
    try:
        started = dt.datetime.strptime(str(pending), "%Y-%m-%dT%H:%M:%SZ")
    except ValueError:
        raise invalid(
            f"the AWS pendingTime {str(pending)[:40]!r} is not YYYY-MM-DDTHH:MM:SSZ"
        ) from None
    started_at = started.replace(tzinfo=dt.timezone.utc).timestamp()
    if started_at > now + skew:
        raise invalid(f"the AWS pendingTime {pending} is in the future")
    if max_age > 0 and now - started_at > max_age:
        raise invalid(
            f"the AWS instance started at {pending}, more than {max_age:g} s ago "
            "(--attestation-aws-max-age)"
        )
    return Verified(KIND, instance, account, started_at)
