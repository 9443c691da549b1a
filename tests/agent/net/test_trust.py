"""`ca_bundle` adds trust; it never replaces the system store (#19 item 4)."""

from __future__ import annotations

import datetime as dt
import hashlib
from pathlib import Path

import pytest

from tests.agent.net.conftest import Pki, Reply, Server
from vmprep.agent.http import Session, trust_context
from vmprep.agent.logs import Log
from vmprep.agent.platform.posix import PosixPlatform
from vmprep.agent.secrets import Vault
from vmprep.agent.steps import StepContext, StepError, runner

H = {"Accept": "*/*"}
PAYLOAD = b"tool bytes"


@pytest.fixture(scope="module")
def other_ca(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A second CA, unrelated to the server's: a private CA someone trusts for something else."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = dt.datetime.now(dt.timezone.utc)
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "another private CA")])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    path = tmp_path_factory.mktemp("other-ca") / "other.pem"
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return path


@pytest.fixture
def system_trusts(pki: Pki, monkeypatch: pytest.MonkeyPatch) -> None:
    """The test server's CA stands for a root of the machine's store (OpenSSL's default file)."""
    monkeypatch.setenv("SSL_CERT_FILE", str(pki.ca_file))
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)


def test_a_bundle_adds_to_the_system_store(system_trusts: None, other_ca: Path) -> None:
    subjects = {
        str(rdn[0][1])
        for c in trust_context(str(other_ca)).get_ca_certs()
        for rdn in c["subject"]
        if rdn[0][0] == "commonName"
    }
    assert {"vmprep test CA", "another private CA"} <= subjects


def test_phone_home_with_a_bundle_still_trusts_the_system_store(
    system_trusts: None, other_ca: Path, tls_server: Server
) -> None:
    tls_server.route("/c", Reply(200, b"ok"), Reply(200, b"ok"))
    session = Session(timeout=5, cafile=str(other_ca))
    assert session.request("GET", tls_server.url("/c"), headers=H, max_bytes=9).body == b"ok"


def ctx(tmp_path: Path) -> StepContext:
    return StepContext(
        platform=PosixPlatform(tmp_path, {}),
        vault=Vault({}),
        log=Log(None, echo=None),
        state_dir=tmp_path,
    )


def download(server: Server, target: Path, **extra: str) -> dict[str, str]:
    server.route("/tool", *[Reply(200, PAYLOAD)] * 3)
    sha = hashlib.sha256(PAYLOAD).hexdigest()
    return {"url": server.url("/tool"), "sha256": sha, "to": str(target), **extra}


def test_a_download_from_a_host_the_system_trusts(
    system_trusts: None, tls_server: Server, tmp_path: Path
) -> None:
    body = download(tls_server, tmp_path / "a.bin")
    assert runner("download")(body, ctx(tmp_path)).ok
    assert (tmp_path / "a.bin").read_bytes() == PAYLOAD


def test_a_download_with_its_own_bundle(
    tls_server: Server, pki: Pki, other_ca: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SSL_CERT_FILE", str(other_ca))  # the system does not trust the host
    with pytest.raises(StepError, match="CERTIFICATE_VERIFY_FAILED"):
        runner("download")(download(tls_server, tmp_path / "x.bin"), ctx(tmp_path))
    body = download(tls_server, tmp_path / "b.bin", ca_bundle=str(pki.ca_file))
    assert runner("download")(body, ctx(tmp_path)).ok
    body = download(tls_server, tmp_path / "c.bin", ca_bundle=str(tmp_path / "none.pem"))
    with pytest.raises(StepError, match=r"cannot load download\.ca_bundle"):
        runner("download")(body, ctx(tmp_path))
