from __future__ import annotations

import base64
import hashlib
import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat

from tests.server.conftest import verify
from vmprep.errors import InputError
from vmprep.protocol.keys import key_id
from vmprep.server.keys import generate, load_key, signature_header


def test_keygen_writes_a_private_pem_0600_and_the_trusted_keys_form(run_vmprep, tmp_path):
    name = tmp_path / "fleet"
    result = run_vmprep("keygen", "-o", str(name))
    pem, pub = Path(f"{name}.pem"), Path(f"{name}.pub")
    assert stat.S_IMODE(pem.stat().st_mode) == 0o600
    public = pub.read_text()
    assert public.startswith("ed25519:")
    assert public.endswith("\n")
    raw = base64.b64decode(public.strip().removeprefix("ed25519:"), validate=True)
    assert len(raw) == 32
    kid = hashlib.sha256(raw).hexdigest()[:16]
    assert f"key id: {kid}" in result.stdout
    assert public.strip() in result.stdout
    key = load_key(pem)
    assert key.raw_public == raw
    assert key.key_id == kid


def test_keygen_refuses_to_overwrite_either_file(run_vmprep, tmp_path):
    name = tmp_path / "fleet"
    Path(f"{name}.pub").write_text("keep me")
    result = run_vmprep("keygen", "-o", str(name), expect=2)
    assert "fleet.pub already exists; refusing to overwrite it" in result.stderr
    assert not Path(f"{name}.pem").exists()
    assert Path(f"{name}.pub").read_text() == "keep me"


@pytest.mark.parametrize("name", ["", ".", "..", "keys/.."])
def test_keygen_refuses_a_name_without_a_file_name(run_vmprep, tmp_path, monkeypatch, name):
    # `-o .` (or an empty NAME from an unset shell variable) wrote hidden `..pem`/`..pub`.
    monkeypatch.chdir(tmp_path)
    (tmp_path / "keys").mkdir()
    result = run_vmprep("keygen", "-o", name, expect=2)
    assert "NAME" in result.stderr
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["keys"]


def test_the_key_id_is_the_first_16_hex_of_sha256_of_the_raw_key():
    assert key_id(bytes(32)) == hashlib.sha256(bytes(32)).hexdigest()[:16]
    assert key_id(bytes(32)) == "66687aadf862bd77"


def test_signature_entries_are_base64url_without_padding_and_verify_with_ecdsa():
    a, b = generate(), generate()
    body = b'{"x":1}'
    header = signature_header([a, b], body)
    entries = header.split(",")
    assert [e.split(";")[0] for e in entries] == [f"keyid={a.key_id}", f"keyid={b.key_id}"]
    for entry in entries:
        sig = entry.split(";sig=")[1]
        assert "=" not in sig
        assert "+" not in sig
        assert "/" not in sig
        assert len(sig) == 86
    assert verify(header, body, a)
    assert verify(header, body, b)
    assert not verify(header, body + b" ", a)
    assert not verify(header, body, generate())


def test_load_key_says_what_is_wrong(tmp_path):
    bad = tmp_path / "bad.pem"
    bad.write_text("not a key")
    with pytest.raises(InputError, match="not an unencrypted PEM private key"):
        load_key(bad)
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    rsa_path = tmp_path / "rsa.pem"
    rsa_path.write_bytes(rsa_key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()))
    with pytest.raises(InputError, match="not an Ed25519 key"):
        load_key(rsa_path)
    with pytest.raises(InputError, match="cannot read the key"):
        load_key(tmp_path / "missing.pem")
