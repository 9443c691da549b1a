"""Keys, key ids, the Vmprep-Signature fine print, and cross-library Ed25519 verification."""

from __future__ import annotations

import base64
import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.agent.net.conftest import Signer
from vmprep.agent import verify
from vmprep.agent.verify import BadKey, Entry
from vmprep.protocol.keys import key_id

RFC8032_KEY = bytes.fromhex("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a")
RFC8032_SIG = bytes.fromhex(
    "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"
)


def b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def test_rfc8032_test_vector_1_verifies():
    keys = {key_id(RFC8032_KEY): RFC8032_KEY}
    entry = Entry(key_id(RFC8032_KEY), b64url(RFC8032_SIG))
    assert verify.verify(b"", [entry], keys) == entry.keyid
    assert verify.verify(b"x", [entry], keys) is None


def test_signed_with_cryptography_verified_with_ecdsa(signer: Signer):
    body = b'{"apiVersion":"vmprep/v1"}'
    keys = verify.trusted_keys([signer.public])
    entries = verify.parse_header(signer.header(body))
    assert verify.verify(body, entries, keys) == signer.keyid


def test_key_id_is_sha256_prefix_of_raw_key(signer: Signer):
    assert key_id(signer.raw) == hashlib.sha256(signer.raw).hexdigest()[:16]
    assert verify.trusted_keys([signer.public]) == {signer.keyid: signer.raw}
    assert len(signer.keyid) == 16
    assert signer.keyid == signer.keyid.lower()


@pytest.mark.parametrize(
    "text",
    [
        "",
        "ed25519:",
        "ED25519:" + base64.b64encode(b"k" * 32).decode(),
        "ed25519:" + base64.b64encode(b"k" * 31).decode(),
        "ed25519:" + base64.b64encode(b"k" * 33).decode(),
        "ed25519:" + base64.b64encode(b"k" * 32).decode().rstrip("="),
        "ed25519:" + base64.urlsafe_b64encode(b"\xfb" * 32).decode(),
        "rsa:" + base64.b64encode(b"k" * 32).decode(),
    ],
)
def test_bad_keys_are_rejected(text: str):
    with pytest.raises(BadKey):
        verify.parse_key(text)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("keyid=a;sig=b", [("a", "b")]),
        ("sig=b;keyid=a", [("a", "b")]),
        (" keyid = a ; sig = b ", [("a", "b")]),
        ("keyid=a;alg=ed25519;sig=b;x=", [("a", "b")]),
        ("keyid=a;sig=b, keyid=c;sig=d", [("a", "b"), ("c", "d")]),
        ("keyid=a , sig=b", []),  # an entry without both is skipped
        ("keyid=a;sig=b,sig=x,keyid=y", [("a", "b")]),
        ("keyid=a;keyid=b;sig=c", []),  # a repeated parameter is ambiguous
        ("KeyId=a;SIG=b", [("a", "b")]),
        ("", []),
        (",,;;==", []),
        ("keyid;sig", []),
    ],
)
def test_parse_header_fine_print(value: str, expected):
    assert [(e.keyid, e.sig) for e in verify.parse_header(value)] == expected


def test_sidecar_lines():
    body = b"keyid=a;sig=b\r\n\n  \nkeyid=c;sig=d"
    assert [(e.keyid, e.sig) for e in verify.parse_sidecar(body)] == [("a", "b"), ("c", "d")]
    assert verify.parse_sidecar(b"") == []
    with pytest.raises(ValueError, match="byte-order mark"):
        verify.parse_sidecar(b"\xef\xbb\xbfkeyid=a;sig=b")
    with pytest.raises(ValueError, match="UTF-8"):
        verify.parse_sidecar(b"keyid=\xff;sig=b")


_token = st.text(alphabet="abcdef0123456789-_ABC", min_size=1, max_size=20)
_space = st.sampled_from(["", " ", "  ", "\t"])


@st.composite
def _entry_text(draw: st.DrawFn) -> tuple[str, tuple[str, str]]:
    keyid, sig = draw(_token), draw(_token)
    params = [("keyid", keyid), ("sig", sig)]
    params += draw(
        st.lists(st.tuples(st.sampled_from(["alg", "created", "x"]), _token), max_size=3)
    )
    params = draw(st.permutations(params))
    text = ";".join(
        f"{draw(_space)}{n}{draw(_space)}={draw(_space)}{v}{draw(_space)}" for n, v in params
    )
    return text, (keyid, sig)


@given(entries=st.lists(_entry_text(), max_size=4), sep=_space)
def test_parse_header_any_order_and_spacing(entries, sep):
    value = f"{sep},{sep}".join(text for text, _ in entries)
    assert [(e.keyid, e.sig) for e in verify.parse_header(value)] == [pair for _, pair in entries]


@given(st.text(max_size=200))
def test_parse_header_never_raises(value: str):
    for entry in verify.parse_header(value):
        assert entry.keyid is not None
        assert entry.sig is not None


@given(st.text(max_size=100))
def test_decode_sig_only_accepts_64_byte_base64url(text: str):
    raw = verify.decode_sig(text)
    assert raw is None or (len(raw) == 64 and b64url(raw) == text)


BODY = b'{"apiVersion":"vmprep/v1","kind":"InstanceConfig","serial":1}'


@settings(max_examples=60, deadline=None)
@given(index=st.integers(0, 63), bit=st.integers(0, 7))
def test_mutated_signatures_are_refused(signer: Signer, index: int, bit: int):
    sig = bytearray(signer.key.sign(BODY))
    sig[index] ^= 1 << bit
    keys = verify.trusted_keys([signer.public])
    assert verify.verify(BODY, [Entry(signer.keyid, b64url(bytes(sig)))], keys) is None


@settings(max_examples=60, deadline=None)
@given(index=st.integers(0, len(BODY) - 1), bit=st.integers(0, 7), extra=st.binary(max_size=3))
def test_mutated_bodies_are_refused(signer: Signer, index: int, bit: int, extra: bytes):
    body = bytearray(BODY)
    body[index] ^= 1 << bit
    keys = verify.trusted_keys([signer.public])
    entries = verify.parse_header(signer.header(BODY))
    assert verify.verify(bytes(body), entries, keys) is None
    assert verify.verify(BODY + extra, entries, keys) == (signer.keyid if not extra else None)


@settings(max_examples=60, deadline=None)
@given(index=st.integers(0, 31), bit=st.integers(0, 7))
def test_mutated_keys_are_refused(signer: Signer, index: int, bit: int):
    raw = bytearray(signer.raw)
    raw[index] ^= 1 << bit
    mutated = bytes(raw)
    keys = {key_id(mutated): mutated}
    sig = b64url(signer.key.sign(BODY))
    # Even with the entry pointing at the mutated key, the signature does not verify.
    assert verify.verify(BODY, [Entry(key_id(mutated), sig)], keys) is None
    assert verify.verify(BODY, [Entry(signer.keyid, sig)], keys) is None


@settings(max_examples=40, deadline=None)
@given(raw=st.binary(min_size=32, max_size=32), sig=st.binary(min_size=64, max_size=64))
def test_arbitrary_keys_and_signatures_never_verify_or_raise(raw: bytes, sig: bytes):
    keys = {key_id(raw): raw}
    assert verify.verify(BODY, [Entry(key_id(raw), b64url(sig))], keys) is None


def test_unknown_key_is_refused(signer: Signer, other_signer: Signer):
    keys = verify.trusted_keys([signer.public])
    entries = verify.parse_header(other_signer.header(BODY))
    assert verify.verify(BODY, entries, keys) is None


def test_rotation_any_trusted_entry_verifies(signer: Signer, other_signer: Signer):
    keys = verify.trusted_keys([signer.public])
    header = f"{other_signer.header(BODY)}, keyid={signer.keyid};sig=AAAA, {signer.header(BODY)}"
    assert verify.verify(BODY, verify.parse_header(header), keys) == signer.keyid


def test_wrong_signature_under_a_trusted_keyid_is_refused(signer: Signer, other_signer: Signer):
    keys = verify.trusted_keys([signer.public])
    forged = Entry(signer.keyid, other_signer.sig(BODY))
    assert verify.verify(BODY, [forged], keys) is None


def test_padded_signature_is_not_the_protocol_form(signer: Signer):
    keys = verify.trusted_keys([signer.public])
    padded = Entry(signer.keyid, signer.sig(BODY) + "==")
    assert verify.verify(BODY, [padded], keys) is None


SMALL_ORDER = [
    bytes(32),  # y = 0, order 4
    b"\x01" + bytes(31),  # the identity
    bytes.fromhex("ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f"),  # y = -1
]


@pytest.mark.parametrize("raw", SMALL_ORDER)
def test_small_order_keys_are_not_trusted(raw: bytes):
    """With such a key an all-zero "signature" would verify any body."""
    with pytest.raises(BadKey, match="large order"):
        verify.parse_key("ed25519:" + base64.b64encode(raw).decode())
    keys = {key_id(raw): raw}
    assert verify.verify(BODY, [Entry(key_id(raw), b64url(bytes(64)))], keys) is None
