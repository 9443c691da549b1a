"""Ed25519 signing keys; their key id and `ed25519:` public form are vmprep.protocol.keys'."""

from __future__ import annotations

import base64
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from vmprep.errors import InputError, UsageError
from vmprep.protocol.keys import key_id, public_form

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey


@dataclass(frozen=True)
class SigningKey:
    private: Ed25519PrivateKey
    raw_public: bytes

    @property
    def key_id(self) -> str:
        return key_id(self.raw_public)

    @property
    def public_form(self) -> str:
        return public_form(self.raw_public)

    def entry(self, body: bytes) -> str:
        """One signature entry, `keyid=<id>;sig=<base64url, no padding>`, over `body`."""
        sig = base64.urlsafe_b64encode(self.private.sign(body)).rstrip(b"=").decode("ascii")
        return f"keyid={self.key_id};sig={sig}"


def _wrap(private: Ed25519PrivateKey) -> SigningKey:
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    raw = private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    return SigningKey(private, raw)


def generate() -> SigningKey:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    return _wrap(Ed25519PrivateKey.generate())


def load_key(path: Path) -> SigningKey:
    """Load a PEM (PKCS#8, unencrypted) Ed25519 private key, as `vmprep keygen` writes it."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InputError(f"{path}: cannot read the key: {exc.strerror}") from None
    try:
        private = load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as exc:
        raise InputError(
            f"{path}: not an unencrypted PEM private key ({exc})",
            hint="create one with `vmprep keygen -o NAME`",
        ) from None
    if not isinstance(private, Ed25519PrivateKey):
        raise InputError(f"{path}: not an Ed25519 key", hint="create one with `vmprep keygen`")
    return _wrap(private)


def load_keys(paths: tuple[Path, ...] | list[Path]) -> list[SigningKey]:
    """Several keys sign side by side during a rotation; key ids must differ."""
    keys = [load_key(p) for p in paths]
    ids = [k.key_id for k in keys]
    if len(set(ids)) != len(ids):
        raise UsageError("the same key is given twice")
    if not keys:
        raise UsageError("no signing key given", hint="pass --key KEY.pem")
    return keys


def signature_header(keys: list[SigningKey], body: bytes) -> str:
    return ",".join(k.entry(body) for k in keys)


def write_keypair(name: Path) -> SigningKey:
    """Write NAME.pem (mode 0600, never overwritten) and NAME.pub (the public form + newline)."""
    from cryptography.hazmat.primitives.serialization import (
        Encoding,
        NoEncryption,
        PrivateFormat,
    )

    if Path(name).name in ("", ".", ".."):
        raise UsageError(
            f"-o {str(name)!r} names no file; give NAME as in NAME.pem and NAME.pub",
            hint="e.g. vmprep keygen -o fleet (or -o keys/fleet)",
        )
    pem_path, pub_path = Path(f"{name}.pem"), Path(f"{name}.pub")
    if not pem_path.parent.is_dir():  # a path on the command line that names nothing: usage
        raise UsageError(
            f"-o {str(name)!r}: the directory {str(pem_path.parent)!r} does not exist",
            hint=f"create it first: mkdir -p {pem_path.parent}",
        )
    for p in (pem_path, pub_path):
        if p.exists() or p.is_symlink():
            raise UsageError(f"{p} already exists; refusing to overwrite it")
    key = generate()
    pem = key.private.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())
    try:
        fd = os.open(pem_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise UsageError(f"{pem_path} already exists; refusing to overwrite it") from None
    except OSError as exc:
        raise InputError(f"{pem_path}: cannot create: {exc.strerror}") from None
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(pem)
        tmp = pub_path.with_name(pub_path.name + ".tmp")
        tmp.write_text(key.public_form + "\n", encoding="ascii")
        os.replace(tmp, pub_path)
    except BaseException:
        pem_path.unlink(missing_ok=True)
        raise
    return key
