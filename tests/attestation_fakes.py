"""Cloud attestation documents signed by test CAs, and a loopback fake metadata service.

The shapes follow the clouds' public documentation:
- Azure IMDS attested data: `{"encoding": "pkcs7", "signature": "<base64 DER CMS SignedData>"}`,
  the signed content JSON with `nonce`, `vmId`, `subscriptionId`, `sku`, `plan`,
  `licenseType`, `timeStamp.createdOn/expiresOn` as "MM/DD/YY HH:MM:SS -0000"; the signer's
  certificate names metadata.azure.com.
  https://learn.microsoft.com/azure/virtual-machines/instance-metadata-service#attested-data
- AWS `instance-identity/rsa2048`: base64 (76-character lines) of a CMS SignedData, SHA-256
  with RSA, whose attached content is the instance identity document JSON.
  https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/verify-rsa2048.html
  https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/instance-identity-documents.html
- GCE identity token (`format=full`): an RS256 JWT, `iss` https://accounts.google.com, `aud`
  the requested audience, `google.compute_engine` with `instance_id`, `project_id`, `zone`...
  https://cloud.google.com/compute/docs/instances/verifying-instance-identity

The fake metadata service answers the three clouds' paths with the headers they require
(`Metadata: true`; the IMDSv2 token; `Metadata-Flavor: Google`) and refuses requests that
carry `X-Forwarded-For` (what the clouds do with proxied requests). It records every request.
Test-only code: `cryptography` is a test dependency; the agent never imports this.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import secrets
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.serialization import pkcs7
from cryptography.x509.oid import NameOID

UTC = dt.timezone.utc


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


# -- certificates ------------------------------------------------------------------------------
@dataclass
class Issued:
    """A key and its certificate (and the chain above it, leaf's issuer first)."""

    key: rsa.RSAPrivateKey
    cert: x509.Certificate
    chain: list[x509.Certificate] = field(default_factory=list)

    def pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)


def _name(cn: str, org: str = "vmprep test") -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, org),
            x509.NameAttribute(NameOID.COMMON_NAME, cn),
        ]
    )


def make_ca(cn: str = "vmprep test root", *, now: dt.datetime | None = None) -> Issued:
    now = now or dt.datetime.now(UTC)
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(cn))
        .issuer_name(_name(cn))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(key, hashes.SHA256())
    )
    return Issued(key, cert)


def issue(
    ca: Issued,
    cn: str,
    *,
    dns: list[str] | None = None,
    now: dt.datetime | None = None,
    not_before: dt.datetime | None = None,
    not_after: dt.datetime | None = None,
) -> Issued:
    """A leaf signing certificate issued by `ca` (SAN `dns` when given)."""
    now = now or dt.datetime.now(UTC)
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(cn))
        .issuer_name(ca.cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before or now - dt.timedelta(days=1))
        .not_valid_after(not_after or now + dt.timedelta(days=365))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
    )
    if dns:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.DNSName(d) for d in dns]), critical=False
        )
    cert = builder.sign(ca.key, hashes.SHA256())
    return Issued(key, cert, [ca.cert, *ca.chain])


def self_signed(cn: str, *, now: dt.datetime | None = None) -> Issued:
    """A self-signed signing certificate, as AWS publishes per region for rsa2048."""
    return make_ca(cn, now=now)


def _signed_data(content: bytes, signer: Issued, *, certs: bool = True) -> bytes:
    """DER CMS SignedData with `content` attached, SHA-256 with RSA (PKCS#1 v1.5)."""
    builder = pkcs7.PKCS7SignatureBuilder().set_data(content)
    builder = builder.add_signer(signer.cert, signer.key, hashes.SHA256())
    for extra in signer.chain:
        builder = builder.add_certificate(extra)
    options = [] if certs else [pkcs7.PKCS7Options.NoCerts]
    return builder.sign(serialization.Encoding.DER, options)


# -- Azure ---------------------------------------------------------------------------------------
def azure_time(when: dt.datetime) -> str:
    """IMDS's timeStamp form: "MM/DD/YY HH:MM:SS -0000"."""
    return when.astimezone(UTC).strftime("%m/%d/%y %H:%M:%S -0000")


def azure_content(
    *,
    nonce: str,
    vm_id: str,
    subscription_id: str = "8d10da13-8125-4ba9-a717-bf7490507b3d",
    created: dt.datetime | None = None,
    lifetime: dt.timedelta = dt.timedelta(hours=6),
    sku: str = "2022-datacenter-azure-edition",
) -> dict[str, Any]:
    created = created or dt.datetime.now(UTC)
    return {
        "licenseType": "Windows_Server",
        "nonce": nonce,
        "plan": {"name": "", "product": "", "publisher": ""},
        "sku": sku,
        "subscriptionId": subscription_id,
        "timeStamp": {
            "createdOn": azure_time(created),
            "expiresOn": azure_time(created + lifetime),
        },
        "vmId": vm_id,
    }


def azure_document(content: dict[str, Any] | bytes, signer: Issued) -> bytes:
    """The body IMDS's /metadata/attested/document returns."""
    raw = content if isinstance(content, bytes) else json.dumps(content).encode()
    signature = base64.b64encode(_signed_data(raw, signer)).decode("ascii")
    return json.dumps({"encoding": "pkcs7", "signature": signature}).encode()


# -- AWS ---------------------------------------------------------------------------------------
def aws_identity(
    *,
    instance_id: str,
    account_id: str = "123456789012",
    region: str = "eu-west-1",
    pending: dt.datetime | None = None,
) -> dict[str, Any]:
    pending = pending or dt.datetime.now(UTC)
    return {
        "accountId": account_id,
        "architecture": "x86_64",
        "availabilityZone": region + "a",
        "billingProducts": None,
        "devpayProductCodes": None,
        "marketplaceProductCodes": None,
        "imageId": "ami-0123456789abcdef0",
        "instanceId": instance_id,
        "instanceType": "m5.large",
        "kernelId": None,
        "pendingTime": pending.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "privateIp": "10.0.0.12",
        "ramdiskId": None,
        "region": region,
        "version": "2017-09-30",
    }


def aws_rsa2048(identity: dict[str, Any] | bytes, signer: Issued) -> bytes:
    """The body of /latest/dynamic/instance-identity/rsa2048: base64 in 64-character lines
    (no PEM header), as `curl` shows it."""
    raw = identity if isinstance(identity, bytes) else json.dumps(identity, indent=2).encode()
    encoded = base64.b64encode(_signed_data(raw, signer, certs=False)).decode("ascii")
    return "\n".join(encoded[i : i + 64] for i in range(0, len(encoded), 64)).encode()


# -- GCE ---------------------------------------------------------------------------------------
@dataclass
class JwtKey:
    key: rsa.RSAPrivateKey
    kid: str

    def jwks(self) -> dict[str, Any]:
        numbers = self.key.public_key().public_numbers()

        def enc(n: int) -> str:
            return b64url(n.to_bytes((n.bit_length() + 7) // 8, "big"))

        return {
            "keys": [
                {
                    "kty": "RSA",
                    "alg": "RS256",
                    "use": "sig",
                    "kid": self.kid,
                    "n": enc(numbers.n),
                    "e": enc(numbers.e),
                }
            ]
        }

    def public_pem(self) -> bytes:
        return self.key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )


def make_jwt_key() -> JwtKey:
    return JwtKey(
        rsa.generate_private_key(public_exponent=65537, key_size=2048), secrets.token_hex(20)
    )


def gce_claims(
    *,
    audience: str,
    instance_id: str,
    project_id: str = "vmprep-test",
    zone: str = "europe-west1-b",
    issued: dt.datetime | None = None,
    lifetime: dt.timedelta = dt.timedelta(hours=1),
) -> dict[str, Any]:
    issued = issued or dt.datetime.now(UTC)
    return {
        "aud": audience,
        "azp": "112233445566778899000",
        "email": "123456789-compute@developer.gserviceaccount.com",
        "email_verified": True,
        "exp": int((issued + lifetime).timestamp()),
        "google": {
            "compute_engine": {
                "instance_creation_timestamp": int(issued.timestamp()) - 60,
                "instance_id": instance_id,
                "instance_name": "web-1",
                "project_id": project_id,
                "project_number": 123456789,
                "zone": zone,
            }
        },
        "iat": int(issued.timestamp()),
        "iss": "https://accounts.google.com",
        "sub": "112233445566778899000",
    }


def gce_token(claims: dict[str, Any], key: JwtKey, *, alg: str = "RS256") -> bytes:
    """An RS256 JWT (compact form) of `claims` signed by `key`."""
    header = {"alg": alg, "kid": key.kid, "typ": "JWT"}
    signing_input = (
        b64url(json.dumps(header).encode()) + "." + b64url(json.dumps(claims).encode())
    ).encode("ascii")
    signature = key.key.sign(signing_input, padding.PKCS1v15(), hashes.SHA256())
    return signing_input + b"." + b64url(signature).encode("ascii")


# -- one test "cloud": its signers and what its metadata service says ------------------------
@dataclass
class Clouds:
    """The signers of all three clouds, made once per test session (RSA keys are slow)."""

    azure_root: Issued
    azure_signer: Issued
    aws_signer: Issued
    gce_key: JwtKey

    @classmethod
    def make(cls) -> Clouds:
        root = make_ca("vmprep test Azure root")
        return cls(
            azure_root=root,
            azure_signer=issue(root, "metadata.azure.com", dns=["metadata.azure.com"]),
            aws_signer=self_signed("vmprep test AWS eu-west-1"),
            gce_key=make_jwt_key(),
        )


@dataclass
class Seen:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]


@dataclass
class FakeMetadata:
    """A loopback metadata service for one cloud at a time (`cloud`: azure, aws or gce).

    `instance_id` is what it attests (its "lie" when it differs from the instance's real id);
    `fail` makes every request answer that status (e.g. 503, 404); `documents` counts the
    attestation documents it gave."""

    clouds: Clouds
    cloud: str
    instance_id: str
    account: str | None = None  # subscription / account / project; the defaults when None
    fail: int | None = None
    requests: list[Seen] = field(default_factory=list)
    tokens: set[str] = field(default_factory=set)
    documents: int = 0
    base: str = ""

    # -- answers -----------------------------------------------------------------------------
    def answer(self, seen: Seen) -> tuple[int, dict[str, str], bytes]:
        if self.fail is not None:
            return self.fail, {}, b"failing on purpose"
        if "x-forwarded-for" in seen.headers:
            return 403, {}, b"Forbidden: proxied request"
        handler = {"azure": self._azure, "aws": self._aws, "gce": self._gce}[self.cloud]
        return handler(seen)

    def _azure(self, seen: Seen) -> tuple[int, dict[str, str], bytes]:
        # IMDS: "Metadata: true" is required, else 400
        # (https://learn.microsoft.com/azure/virtual-machines/instance-metadata-service#errors-and-debugging)
        if seen.headers.get("metadata") != "true" or seen.method != "GET":
            return 400, {}, b'{"error": "Bad request. Required metadata header not specified"}'
        if seen.path == "/metadata/instance":
            return 200, {}, json.dumps({"compute": {"vmId": self.instance_id}}).encode()
        if seen.path != "/metadata/attested/document":
            return 404, {}, b""
        if seen.query.get("api-version") != ["2020-09-01"]:
            return 400, {}, b'{"error": "Bad request. api-version is invalid"}'
        nonce = (seen.query.get("nonce") or [""])[0]
        if nonce and not (len(nonce) <= 10 and nonce.isdigit()):
            return 400, {}, b'{"error": "Bad request. nonce is invalid"}'
        content = azure_content(nonce=nonce, vm_id=self.instance_id)
        if self.account:
            content["subscriptionId"] = self.account
        self.documents += 1
        return 200, {}, azure_document(content, self.clouds.azure_signer)

    def _aws(self, seen: Seen) -> tuple[int, dict[str, str], bytes]:
        if seen.path == "/latest/api/token":
            ttl = seen.headers.get("x-aws-ec2-metadata-token-ttl-seconds", "")
            if seen.method != "PUT" or not ttl.isdigit() or not 1 <= int(ttl) <= 21600:
                return 400, {}, b""
            token = secrets.token_urlsafe(32)
            self.tokens.add(token)
            return 200, {"X-aws-ec2-metadata-token-ttl-seconds": ttl}, token.encode()
        # IMDSv2 only: a GET without a valid token is 401.
        if seen.headers.get("x-aws-ec2-metadata-token") not in self.tokens:
            return 401, {}, b""
        if seen.path == "/latest/meta-data/instance-id":
            return 200, {}, self.instance_id.encode()
        if seen.path != "/latest/dynamic/instance-identity/rsa2048":
            return 404, {}, b""
        identity = aws_identity(instance_id=self.instance_id)
        if self.account:
            identity["accountId"] = self.account
        self.documents += 1
        return 200, {}, aws_rsa2048(identity, self.clouds.aws_signer)

    def _gce(self, seen: Seen) -> tuple[int, dict[str, str], bytes]:
        # Without "Metadata-Flavor: Google" the metadata server answers 403
        # (https://cloud.google.com/compute/docs/metadata/querying-metadata).
        if seen.headers.get("metadata-flavor") != "Google":
            return 403, {}, b"Missing Metadata-Flavor:Google header."
        if seen.path == "/computeMetadata/v1/instance/id":
            return 200, {"Metadata-Flavor": "Google"}, self.instance_id.encode()
        if seen.path != "/computeMetadata/v1/instance/service-accounts/default/identity":
            return 404, {}, b""
        audience = (seen.query.get("audience") or [""])[0]
        if not audience:
            return 400, {}, b"non-empty audience parameter required"
        claims = gce_claims(audience=audience, instance_id=self.instance_id)
        if self.account:
            claims["google"]["compute_engine"]["project_id"] = self.account
        if seen.query.get("format") != ["full"]:
            del claims["google"]
        self.documents += 1
        return 200, {"Metadata-Flavor": "Google"}, gce_token(claims, self.clouds.gce_key)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    fake: FakeMetadata

    def log_message(self, *args: Any) -> None:
        pass

    def _any(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        parts = urlsplit(self.path)
        seen = Seen(
            self.command,
            parts.path,
            parse_qs(parts.query),
            {k.lower(): v for k, v in self.headers.items()},
        )
        self.fake.requests.append(seen)
        status, headers, body = self.fake.answer(seen)
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)
        self.close_connection = True

    do_GET = do_PUT = do_POST = _any


def serve_metadata(fake: FakeMetadata) -> Iterator[FakeMetadata]:
    """Run `fake` on 127.0.0.1 for the duration of a `with`-less generator (pytest fixture)."""

    class Handler(_Handler):
        pass

    Handler.fake = fake
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    fake.base = f"http://127.0.0.1:{httpd.server_address[1]}"
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield fake
    finally:
        httpd.shutdown()
        httpd.server_close()
