"""The verifiers of the three clouds' documents (vmprep/server/attestation), with documents
forged by test CAs and keys in the clouds' own shapes (tests/attestation_fakes.py)."""

from __future__ import annotations

import base64
import datetime as dt
import json
import shutil
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.serialization import pkcs7
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.attestation_fakes import (
    aws_identity,
    aws_rsa2048,
    azure_content,
    azure_document,
    b64url,
    gce_claims,
    gce_token,
    issue,
    make_jwt_key,
)
from tests.server.attestation_setup import (
    AUDIENCE,
    UTC,
    clouds,
    header,
    intermediate_ca,
    pem,
    strangers,
    write_anchors,
)
from vmprep.errors import InputError
from vmprep.server.attestation import AttestationError, Attestor, parse_header
from vmprep.server.attestation.anchors import load_anchors
from vmprep.server.attestation.jwks import JwksCache

NOW = dt.datetime.now(UTC)


@pytest.fixture(autouse=True)
def _now() -> None:
    """NOW is each test's own: taken at collection it is minutes old in a full run, and the
    tests that sit just inside a validity window would fall out of it."""
    global NOW
    NOW = dt.datetime.now(UTC)


@pytest.fixture(scope="module")
def attestor(tmp_path_factory):
    return Attestor(load_anchors(write_anchors(tmp_path_factory.mktemp("anchors"))), (AUDIENCE,))


def verify(attestor, kind, raw) -> Any:
    return attestor.verify(parse_header(header(kind, raw)["Vmprep-Attestation"]))


def refused(attestor, kind, raw, code, match) -> Any:
    with pytest.raises(AttestationError, match=match) as caught:
        verify(attestor, kind, raw)
    assert caught.value.code == code
    return caught.value


# -- Azure -----------------------------------------------------------------------------------
def azure(
    nonce="0123456789", vm_id="8F4A1A7C-3D4E-4F5A-9B6C-7D8E9F0A1B2C", signer=None, **kw
) -> Any:
    return azure_document(
        azure_content(nonce=nonce, vm_id=vm_id, **kw), signer or clouds().azure_signer
    )


def test_azure_valid_gives_vm_id_subscription_nonce_and_time(attestor):
    v = verify(attestor, "azure-imds", azure())
    assert (v.kind, v.instance_id, v.nonce) == (
        "azure-imds",
        "8f4a1a7c-3d4e-4f5a-9b6c-7d8e9f0a1b2c",
        "0123456789",
    )
    assert v.scope == "8d10da13-8125-4ba9-a717-bf7490507b3d"
    assert abs(v.issued_at - NOW.timestamp()) < 60


def test_azure_signed_by_another_ca_is_invalid(attestor):
    refused(
        attestor,
        "azure-imds",
        azure(signer=strangers().azure_signer),
        "attestation-invalid",
        "chain",
    )


def test_azure_signer_not_named_metadata_azure_com_is_invalid(attestor):
    other = issue(clouds().azure_root, "evil.example.com", dns=["evil.example.com"])
    refused(
        attestor, "azure-imds", azure(signer=other), "attestation-invalid", "metadata.azure.com"
    )


def test_azure_regional_name_under_metadata_azure_com_is_accepted(attestor):
    regional = issue(clouds().azure_root, "westeurope.metadata.azure.com")
    assert verify(attestor, "azure-imds", azure(signer=regional)).kind == "azure-imds"


def test_azure_expired_signing_certificate_is_invalid(attestor):
    old = issue(
        clouds().azure_root,
        "metadata.azure.com",
        not_before=NOW - dt.timedelta(days=30),
        not_after=NOW - dt.timedelta(days=1),
    )
    refused(attestor, "azure-imds", azure(signer=old), "attestation-invalid", "chain")


def test_azure_document_past_its_expires_on_is_invalid(attestor):
    stale = azure(created=NOW - dt.timedelta(hours=7), lifetime=dt.timedelta(hours=6))
    refused(attestor, "azure-imds", stale, "attestation-invalid", "valid from")


def test_azure_document_from_the_future_is_invalid(attestor):
    refused(
        attestor,
        "azure-imds",
        azure(created=NOW + dt.timedelta(hours=1)),
        "attestation-invalid",
        "valid from",
    )


def test_azure_tampered_content_is_invalid(attestor):
    """Swap the signed content's vmId (same length) inside the DER: the digest breaks."""
    doc = json.loads(azure())
    der = base64.b64decode(doc["signature"])
    tampered = der.replace(b"8F4A1A7C", b"00000000")
    assert tampered != der
    doc["signature"] = base64.b64encode(tampered).decode()
    refused(attestor, "azure-imds", json.dumps(doc).encode(), "attestation-invalid", "digest")


def test_azure_without_signed_attributes_verifies_over_the_content(attestor):
    signer = clouds().azure_signer
    content = json.dumps(azure_content(nonce="1", vm_id="vm-1")).encode()
    der = (
        pkcs7.PKCS7SignatureBuilder()
        .set_data(content)
        .add_signer(signer.cert, signer.key, hashes.SHA256())
        .sign(serialization.Encoding.DER, [pkcs7.PKCS7Options.NoAttributes])
    )
    doc = json.dumps({"encoding": "pkcs7", "signature": base64.b64encode(der).decode()})
    assert verify(attestor, "azure-imds", doc.encode()).instance_id == "vm-1"


def test_azure_chain_through_a_configured_intermediate(tmp_path):
    c = clouds()
    mid = intermediate_ca(c.azure_root)
    leaf = issue(mid, "metadata.azure.com")
    leaf.chain = []  # IMDS sends only its own certificate
    anchors = write_anchors(tmp_path)
    a = Attestor(load_anchors(anchors))
    refused(a, "azure-imds", azure(signer=leaf), "attestation-invalid", "chain")
    (anchors / "azure" / "issuing-ca.pem").write_bytes(pem(mid.cert))
    a = Attestor(load_anchors(anchors))
    assert verify(a, "azure-imds", azure(signer=leaf)).kind == "azure-imds"


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"not json",
        b"[]",
        b'{"encoding": "pkcs7"}',
        b'{"encoding": "pkcs7", "signature": "%%%"}',
        b'{"encoding": "pkcs7", "signature": "AAAA"}',
        b"\xff\xfe",
    ],
)
def test_azure_garbage_is_malformed(attestor, raw):
    if raw == b"":
        with pytest.raises(AttestationError) as caught:
            parse_header("azure-imds ")
        assert caught.value.code == "attestation-malformed"
        return
    refused(attestor, "azure-imds", raw, "attestation-malformed", None)


# -- AWS -------------------------------------------------------------------------------------
def aws(instance_id="i-0123456789abcdef0", signer=None, **kw) -> Any:
    return aws_rsa2048(aws_identity(instance_id=instance_id, **kw), signer or clouds().aws_signer)


def test_aws_valid_gives_instance_account_and_pending_time(attestor):
    v = verify(attestor, "aws-iid", aws(pending=NOW - dt.timedelta(minutes=5)))
    assert (v.kind, v.instance_id, v.scope) == ("aws-iid", "i-0123456789abcdef0", "123456789012")
    assert v.nonce is None
    assert abs(v.issued_at - (NOW.timestamp() - 300)) < 2


def test_aws_signed_by_an_unconfigured_certificate_is_invalid(attestor):
    refused(
        attestor, "aws-iid", aws(signer=strangers().aws_signer), "attestation-invalid", "trusted"
    )


def test_aws_a_certificate_the_document_brings_along_is_not_trusted(attestor):
    """The signer must be a configured region certificate, whatever the document carries."""
    stranger = strangers().aws_signer
    raw = json.dumps(aws_identity(instance_id="i-1")).encode()
    der = (
        pkcs7.PKCS7SignatureBuilder()
        .set_data(raw)
        .add_signer(stranger.cert, stranger.key, hashes.SHA256())
        .sign(serialization.Encoding.DER, [])
    )
    refused(attestor, "aws-iid", base64.b64encode(der), "attestation-invalid", "trusted")


def test_aws_document_older_than_the_max_age_is_invalid(tmp_path):
    a = Attestor(load_anchors(write_anchors(tmp_path)), aws_max_age=3600)
    refused(
        a, "aws-iid", aws(pending=NOW - dt.timedelta(hours=2)), "attestation-invalid", "max-age"
    )
    assert verify(a, "aws-iid", aws(pending=NOW - dt.timedelta(minutes=50))).kind == "aws-iid"
    unbounded = Attestor(load_anchors(tmp_path), aws_max_age=0)
    assert verify(unbounded, "aws-iid", aws(pending=NOW - dt.timedelta(days=90))).kind == "aws-iid"


def test_aws_pending_time_in_the_future_is_invalid(attestor):
    refused(
        attestor,
        "aws-iid",
        aws(pending=NOW + dt.timedelta(hours=1)),
        "attestation-invalid",
        "future",
    )


def test_aws_tampered_identity_is_invalid(attestor):
    der = base64.b64decode(aws())
    tampered = der.replace(b"123456789012", b"999999999999")
    refused(attestor, "aws-iid", base64.b64encode(tampered), "attestation-invalid", "digest")


@pytest.mark.parametrize("raw", [b"%%%", b"AAAA", base64.b64encode(b"\x30\x03\x02\x01\x01")])
def test_aws_garbage_is_malformed(attestor, raw):
    refused(attestor, "aws-iid", raw, "attestation-malformed", None)


# -- GCE -------------------------------------------------------------------------------------
def gce(key=None, audience=AUDIENCE, instance_id="4567890123456789012", **kw) -> Any:
    return gce_token(
        gce_claims(audience=audience, instance_id=instance_id, **kw), key or clouds().gce_key
    )


def test_gce_valid_gives_instance_project_and_iat(attestor):
    v = verify(attestor, "gce-iit", gce())
    assert (v.kind, v.instance_id, v.scope) == ("gce-iit", "4567890123456789012", "vmprep-test")


def test_gce_wrong_audience_is_invalid(attestor):
    refused(
        attestor, "gce-iit", gce(audience="https://other.test"), "attestation-invalid", "audience"
    )


def test_gce_signed_by_an_untrusted_key_is_invalid(attestor):
    refused(attestor, "gce-iit", gce(key=strangers().gce_key), "attestation-invalid", "signature")


def test_gce_expired_token_is_invalid(attestor):
    old = gce(issued=NOW - dt.timedelta(hours=2), lifetime=dt.timedelta(hours=1))
    refused(attestor, "gce-iit", old, "attestation-invalid", "expired")


def test_gce_expiry_within_the_clock_skew_is_accepted(attestor):
    just = gce(issued=NOW - dt.timedelta(minutes=62), lifetime=dt.timedelta(hours=1))
    assert verify(attestor, "gce-iit", just).kind == "gce-iit"


def test_gce_tampered_claims_are_invalid(attestor):
    head, _, sig = gce().split(b".")
    claims = gce_claims(audience=AUDIENCE, instance_id="1", project_id="victim-project")
    forged = head + b"." + b64url(json.dumps(claims).encode()).encode() + b"." + sig
    refused(attestor, "gce-iit", forged, "attestation-invalid", "signature")


def test_gce_alg_none_is_refused(attestor):
    claims = gce_claims(audience=AUDIENCE, instance_id="1")
    parts = [b64url(json.dumps(p).encode()) for p in ({"alg": "none"}, claims)]
    refused(
        attestor, "gce-iit", (".".join([*parts, "AAAA"])).encode(), "attestation-invalid", "RS256"
    )


def test_gce_token_without_compute_engine_claims_is_invalid(attestor):
    claims = gce_claims(audience=AUDIENCE, instance_id="1")
    del claims["google"]
    refused(
        attestor,
        "gce-iit",
        gce_token(claims, clouds().gce_key),
        "attestation-invalid",
        "format=full",
    )


def test_gce_key_as_a_bare_pem_is_tried_for_any_key_id(tmp_path):
    a = Attestor(load_anchors(write_anchors(tmp_path, gce_kid=False)), (AUDIENCE,))
    assert verify(a, "gce-iit", gce()).kind == "gce-iit"


def test_gce_v1_certs_map_of_key_id_to_certificate(tmp_path):
    import datetime as _dt

    from cryptography import x509

    c = clouds()
    name = x509.Name([x509.NameAttribute(x509.oid.NameOID.COMMON_NAME, "google test")])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(c.gce_key.key.public_key())
        .serial_number(1)
        .not_valid_before(NOW - _dt.timedelta(days=1))
        .not_valid_after(NOW + _dt.timedelta(days=1))
        .sign(c.gce_key.key, hashes.SHA256())
    )
    (tmp_path / "gce").mkdir()
    (tmp_path / "gce" / "v1.json").write_text(json.dumps({c.gce_key.kid: pem(cert).decode()}))
    a = Attestor(load_anchors(tmp_path), (AUDIENCE,))
    assert verify(a, "gce-iit", gce()).kind == "gce-iit"


def test_gce_without_a_configured_audience_is_invalid(tmp_path):
    a = Attestor(load_anchors(write_anchors(tmp_path)))
    refused(a, "gce-iit", gce(), "attestation-invalid", "--attestation-audience")


@pytest.mark.parametrize("raw", [b"a.b", b"a.b.c.d", b"!!.??.##", b"e30.bm90anNvbg.AAAA"])
def test_gce_garbage_is_malformed(attestor, raw):
    refused(attestor, "gce-iit", raw, "attestation-malformed", None)


# -- the header --------------------------------------------------------------------------------
def test_an_unknown_kind_is_malformed():
    with pytest.raises(AttestationError, match="unknown kind") as caught:
        parse_header("tpm-quote AAAA")
    assert (caught.value.status, caught.value.code) == (400, "attestation-malformed")


def test_an_oversized_header_is_malformed():
    with pytest.raises(AttestationError, match="16384") as caught:
        parse_header("aws-iid " + "A" * 16380)
    assert caught.value.code == "attestation-malformed"


@pytest.mark.parametrize("value", ["aws-iid", "aws-iid AAA=", "aws-iid A+/A", "aws-iid A"])
def test_a_header_that_is_not_base64url_without_padding_is_malformed(value):
    with pytest.raises(AttestationError) as caught:
        parse_header(value)
    assert caught.value.code == "attestation-malformed"


# -- anchors -----------------------------------------------------------------------------------
def test_an_anchors_directory_without_cloud_folders_is_refused(tmp_path):
    with pytest.raises(InputError, match="no azure/, aws/ or gce/"):
        load_anchors(tmp_path)


def test_a_bad_pem_file_is_refused_with_its_path(tmp_path):
    (tmp_path / "aws").mkdir()
    (tmp_path / "aws" / "region.pem").write_text("-----BEGIN CERTIFICATE-----\nnope\n")
    with pytest.raises(InputError, match=r"region\.pem"):
        load_anchors(tmp_path)


def test_azure_anchors_need_a_root(tmp_path):
    (tmp_path / "azure").mkdir()
    (tmp_path / "azure" / "leaf.pem").write_bytes(pem(clouds().azure_signer.cert))
    with pytest.raises(InputError, match="self-signed root"):
        load_anchors(tmp_path)


def test_a_cloud_without_anchors_accepts_nothing(tmp_path):
    (tmp_path / "gce").mkdir()
    (tmp_path / "gce" / "k.pem").write_bytes(clouds().gce_key.public_pem())
    a = Attestor(load_anchors(tmp_path), (AUDIENCE,))
    refused(a, "aws-iid", aws(), "attestation-invalid", "no AWS trust anchors")
    refused(a, "azure-imds", azure(), "attestation-invalid", "no Azure trust anchors")


# -- a JWKS URL --------------------------------------------------------------------------------
class _Keys(BaseHTTPRequestHandler):
    body = b""
    hits = 0

    def log_message(self, *args):
        pass

    def do_GET(self):
        type(self).hits += 1
        self.send_response(200)
        self.send_header("Cache-Control", "public, max-age=120")
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)


@pytest.fixture
def jwks_server():
    class Handler(_Keys):
        pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield Handler, f"http://127.0.0.1:{httpd.server_address[1]}/certs"
    httpd.shutdown()
    httpd.server_close()


def test_jwks_url_is_fetched_once_cached_for_its_max_age_and_refetched_for_a_new_key(jwks_server):
    handler, url = jwks_server
    handler.body = json.dumps(clouds().gce_key.jwks()).encode()
    clock = [NOW.timestamp()]
    a = Attestor(audiences=(AUDIENCE,), jwks=JwksCache(url, clock=lambda: clock[0]))
    a.clock = lambda: clock[0]
    assert verify(a, "gce-iit", gce()).kind == "gce-iit"
    assert verify(a, "gce-iit", gce()).kind == "gce-iit"
    assert handler.hits == 1
    rotated = make_jwt_key()  # Google publishes a new key; a token names it
    handler.body = json.dumps(rotated.jwks()).encode()
    clock[0] += 61
    assert verify(a, "gce-iit", gce(key=rotated)).kind == "gce-iit"
    assert handler.hits == 2
    clock[0] += 121  # past max-age
    verify(a, "gce-iit", gce(key=rotated))
    assert handler.hits == 3


def test_an_unreachable_jwks_url_keeps_nothing_and_refuses(caplog):
    a = Attestor(audiences=(AUDIENCE,), jwks=JwksCache("http://127.0.0.1:9/certs", timeout=0.5))
    refused(a, "gce-iit", gce(), "attestation-invalid", "no GCE signing keys")
    assert "cannot fetch the GCE signing keys" in caplog.text


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command")
def test_aws_ber_with_indefinite_lengths_as_openssl_streams_it(tmp_path):
    """Signers that stream (OpenSSL's `cms -sign -stream`) write BER with indefinite lengths
    and a chunked content; the parser must take it as well as DER."""
    signer = clouds().aws_signer
    (tmp_path / "c.pem").write_bytes(pem(signer.cert))
    (tmp_path / "k.pem").write_bytes(
        signer.key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    (tmp_path / "doc.json").write_text(json.dumps(aws_identity(instance_id="i-ber")))
    subprocess.run(
        ["openssl", "cms", "-sign", "-binary", "-nodetach", "-stream", "-nocerts", "-md",
         "sha256", "-outform", "DER", "-in", "doc.json", "-signer", "c.pem", "-inkey", "k.pem",
         "-out", "ber.der"],
        cwd=tmp_path, check=True, capture_output=True,
    )  # fmt: skip
    ber = (tmp_path / "ber.der").read_bytes()
    assert ber[1] == 0x80  # indefinite length: not DER
    a = Attestor(load_anchors(write_anchors(tmp_path / "anchors")))
    assert verify(a, "aws-iid", base64.b64encode(ber)).instance_id == "i-ber"


_VALID: dict[str, bytes] = {}


def _valid(kind: str) -> bytes:
    if kind not in _VALID:
        _VALID[kind] = {
            "azure-imds": azure,
            "aws-iid": lambda: base64.b64decode(aws()),
            "gce-iit": gce,
        }[kind]()
    return _VALID[kind]


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    kind=st.sampled_from(["azure-imds", "aws-iid", "gce-iit"]),
    edits=st.lists(
        st.tuples(st.integers(min_value=0), st.integers(0, 255)), min_size=1, max_size=8
    ),
    cut=st.none() | st.integers(min_value=0),
)
def test_a_damaged_document_is_refused_never_a_crash(attestor, kind, edits, cut):
    """Flipped bytes and truncations anywhere in a valid document: an AttestationError
    (malformed or invalid) or, where the damage missed everything signed, a verification —
    never another exception (which would be a 500)."""
    raw = bytearray(_valid(kind))
    for at, value in edits:
        raw[at % len(raw)] = value
    if cut is not None:
        raw = raw[: cut % len(raw)]
    data = bytes(raw)
    if kind == "aws-iid":
        data = base64.b64encode(data)
    refusal = None
    try:
        verify(attestor, kind, data)
    except AttestationError as exc:
        refusal = exc.code
    assert refusal in (None, "attestation-malformed", "attestation-invalid")


# The sample response of "Sample 1: Get attested data" on
# https://learn.microsoft.com/azure/virtual-machines/instance-metadata-service#attested-data
# (a Microsoft-made document: SHA-256 digest, rsaEncryption signature over the content, no
# signed attributes, its own test certificate for testsubdomain.metadata.azure.com, 2018).
MICROSOFT_SAMPLE = (
    "MIIEEgYJKoZIhvcNAQcCoIIEAzCCA/8CAQExDzANBgkqhkiG9w0BAQsFADCBugYJKoZIhvcNAQcBoIGsBIGpeyJub25j"
    "ZSI6IjEyMzQ1NjY3NjYiLCJwbGFuIjp7Im5hbWUiOiIiLCJwcm9kdWN0IjoiIiwicHVibGlzaGVyIjoiIn0sInRpbWVT"
    "dGFtcCI6eyJjcmVhdGVkT24iOiIxMS8yMC8xOCAyMjowNzozOSAtMDAwMCIsImV4cGlyZXNPbiI6IjExLzIwLzE4IDIy"
    "OjA4OjI0IC0wMDAwIn0sInZtSWQiOiIifaCCAj8wggI7MIIBpKADAgECAhBnxW5Kh8dslEBA0E2mIBJ0MA0GCSqGSIb3"
    "DQEBBAUAMCsxKTAnBgNVBAMTIHRlc3RzdWJkb21haW4ubWV0YWRhdGEuYXp1cmUuY29tMB4XDTE4MTEyMDIxNTc1N1oX"
    "DTE4MTIyMDIxNTc1NlowKzEpMCcGA1UEAxMgdGVzdHN1YmRvbWFpbi5tZXRhZGF0YS5henVyZS5jb20wgZ8wDQYJKoZI"
    "hvcNAQEBBQADgY0AMIGJAoGBAML/tBo86ENWPzmXZ0kPkX5dY5QZ150mA8lommszE71x2sCLonzv4/UWk4H+jMMWRRwI"
    "ea2CuQ5RhdWAHvKq6if4okKNt66fxm+YTVz9z0CTfCLmLT+nsdfOAsG1xZppEapC0Cd9vD6NCKyE8aYI1pliaeOnFjG0"
    "WvMY04uWz2MdAgMBAAGjYDBeMFwGA1UdAQRVMFOAENnYkHLa04Ut4Mpt7TkJFfyhLTArMSkwJwYDVQQDEyB0ZXN0c3Vi"
    "ZG9tYWluLm1ldGFkYXRhLmF6dXJlLmNvbYIQZ8VuSofHbJRAQNBNpiASdDANBgkqhkiG9w0BAQQFAAOBgQCLSM6aX5Bs"
    "1KHCJp4VQtxZPzXF71rVKCocHy3N9PTJQ9Fpnd+bYw2vSpQHg/AiG82WuDFpPReJvr7Pa938mZqW9HUOGjQKK2FYDTg6"
    "fXD8pkPdyghlX5boGWAMMrf7bFkup+lsT+n2tRw2wbNknO1tQ0wICtqy2VqzWwLi45RBwTGB6DCB5QIBATA/MCsxKTAn"
    "BgNVBAMTIHRlc3RzdWJkb21haW4ubWV0YWRhdGEuYXp1cmUuY29tAhBnxW5Kh8dslEBA0E2mIBJ0MA0GCSqGSIb3DQEB"
    "CwUAMA0GCSqGSIb3DQEBAQUABIGAld1BM/yYIqqv8SDE4kjQo3Ul/IKAVR8ETKcve5BAdGSNkTUooUGVniTXeuvDj5Nk"
    "mazOaKZp9fEtByqqPOyw/nlXaZgOO44HDGiPUJ90xVYmfeK6p9RpJBu6kiKhnnYTelUk5u75phe5ZbMZfBhuPhXmYAdj"
    "c7Nmw97nx8NnprQ="
)


def test_microsofts_sample_document_parses_and_its_signature_verifies():
    from vmprep.server.attestation import cms

    signed = cms.parse(base64.b64decode(MICROSOFT_SAMPLE), "sample")
    signer = cms.find_signer(signed, signed.certificates)
    cms.verify_signature(signed, signer, "sample")  # the signature itself is good
    content = json.loads(signed.content)
    assert content["nonce"] == "1234566766"
    assert content["timeStamp"]["createdOn"] == "11/20/18 22:07:39 -0000"


def test_microsofts_sample_is_refused_for_its_signer_which_chains_to_no_anchor(attestor):
    doc = json.dumps({"encoding": "pkcs7", "signature": MICROSOFT_SAMPLE}).encode()
    refused(attestor, "azure-imds", doc, "attestation-invalid", "chain")
