"""Writing a publish tree into a bucket so that a reader never sees a half-published state.

The agent asks for fixed paths (`<base>/v1/config/<role>/<id>` and the same with `.sig`,
docs/protocol.md "Static hosting"), so a document cannot be given a new, content-addressed
name: it is overwritten in place, and an object store replaces one object at a time. So, for
each document:

1. its sidecar is written first, holding the new document's signatures *and* those of the
   document still live (kept only when they verify it with one of the publishing keys), so
   an agent that read either body finds a matching signature;
2. then the document itself;
3. after every document, the manifest (`.vmprep-publish.json`: serial, documents, and the
   stale objects with the time they went stale) — the index a later run starts from.

Objects under the prefix that this run does not write (a role or an override removed) are
stale — except another publish's tree nested under it (a prefix with its own manifest). Each
is deleted once it has been stale for the grace (`--grace`, 24h by default), the document
before its sidecar; until then the manifest remembers since when.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from vmprep.errors import ExternalToolError, InputError, UsageError
from vmprep.server.keys import SigningKey
from vmprep.server.publish import MANIFEST
from vmprep.server.upload import Bucket, Target

JSON = "application/json"
SIDECAR = "text/plain"  # ASCII lines (docs/protocol.md "The sidecar")
# Documents live at fixed, overwritten paths: a cache may keep them a minute, no more.
# Sidecars and the manifest are revalidated on every read (a 304 when unchanged): a cached
# sidecar older than the document a CDN serves would fail verification, while a current
# sidecar also verifies the previous document (see above). So a reader is safe as long as
# runs are at least DOCUMENT_CACHE's max-age apart (docs/scale.md).
DOCUMENT_CACHE = "max-age=60"
SIDECAR_CACHE = "no-cache"
MANIFEST_CACHE = "no-cache"
THREADS = 16


@dataclass
class Previous:
    serial: int = 0
    retired: dict[str, float] = field(default_factory=dict)  # relative path -> stale since


@dataclass
class Synced:
    written: int = 0
    deleted: list[str] = field(default_factory=list)
    kept_stale: list[str] = field(default_factory=list)


def read_previous(bucket: Bucket, target: Target) -> Previous:
    """What the last run left (its manifest); refuse a prefix that `publish` did not write."""
    raw = bucket.read(target.key(MANIFEST))
    if raw is None:
        existing = bucket.keys(target.key(""))
        if existing:
            raise UsageError(
                f"{target} holds {len(existing)} object(s) not written by `vmprep publish` "
                f"(no {MANIFEST}); refusing to publish over them",
                hint="choose an empty prefix",
            )
        return Previous()
    try:
        doc = json.loads(raw)
        serial = doc["serial"]
        retired = doc.get("retired", {})
        if not isinstance(serial, int) or not isinstance(retired, dict):
            raise TypeError("serial or retired has the wrong type")
        return Previous(serial, {str(k): float(v) for k, v in retired.items()})
    except (ValueError, KeyError, TypeError) as exc:
        raise InputError(f"{target.key(MANIFEST)} in {target}: unreadable ({exc})") from None


def upload_tree(
    bucket: Bucket,
    target: Target,
    files: dict[str, bytes],
    keys: list[SigningKey],
    previous: Previous,
    *,
    now: float,
    grace: float,
) -> Synced:
    synced = Synced()
    documents = sorted(rel for rel in files if rel != MANIFEST and not rel.endswith(".sig"))

    def one(rel: str) -> None:
        body = files[rel]
        sidecar = files[rel + ".sig"] + _still_live(bucket, target.key(rel), body, keys)
        bucket.write(
            target.key(rel + ".sig"), sidecar, content_type=SIDECAR, cache_control=SIDECAR_CACHE
        )
        bucket.write(target.key(rel), body, content_type=JSON, cache_control=DOCUMENT_CACHE)

    _each(one, documents)
    synced.written = 2 * len(documents)

    # Stale: under the prefix, not written by this run (the manifest is rewritten below).
    present = {k for k in bucket.keys(target.key("")) if k != target.key(MANIFEST)}
    # another publish's tree nested under this prefix is that publish's business
    nested = [k[: -len(MANIFEST)] for k in present if k.endswith("/" + MANIFEST)]
    present = {k for k in present if not any(k.startswith(n) for n in nested)}
    stale = sorted(present - {target.key(rel) for rel in files})
    rel_of = {target.key(rel): rel for rel in (_rel(k, target) for k in stale)}
    retired: dict[str, float] = {}
    due: list[str] = []
    for key in stale:
        rel = rel_of[key]
        since = previous.retired.get(rel, now)
        if now - since >= grace:
            due.append(key)
        else:
            retired[rel] = since
            synced.kept_stale.append(rel)
    # documents first, then sidecars: no reader finds a document whose sidecar is gone
    _each(bucket.delete, [k for k in due if not k.endswith(".sig")])
    _each(bucket.delete, [k for k in due if k.endswith(".sig")])
    synced.deleted = [rel_of[k] for k in due]

    manifest: dict[str, Any] = json.loads(files[MANIFEST])
    manifest["retired"] = retired
    body = (json.dumps(manifest, indent=2) + "\n").encode()
    bucket.write(target.key(MANIFEST), body, content_type=JSON, cache_control=MANIFEST_CACHE)
    return synced


def _rel(key: str, target: Target) -> str:
    return key[len(target.prefix) + 1 :] if target.prefix else key


def _each(fn: Callable[[str], None], items: list[str]) -> None:
    """`fn` over `items` on a few threads; the first failure is raised once all have ended."""
    if not items:
        return
    with ThreadPoolExecutor(min(THREADS, len(items))) as pool:
        for future in [pool.submit(fn, item) for item in items]:
            future.result()


def _still_live(bucket: Bucket, key: str, body: bytes, keys: list[SigningKey]) -> bytes:
    """The live document's sidecar lines that verify it under a publishing key, unless it is
    the same body: they keep it verifiable while it is being replaced."""
    live = bucket.read(key)
    if live is None or live == body:
        return b""
    sidecar = bucket.read(key + ".sig") or b""
    kept = []
    for line in sidecar.decode("ascii", "replace").splitlines():
        line = line.strip()
        if line and _verifies(line, live, keys):
            kept.append(line + "\n")
    return "".join(kept).encode("ascii")


def _verifies(line: str, body: bytes, keys: list[SigningKey]) -> bool:
    """A sidecar line as publish writes it (`keyid=<id>;sig=<base64url>`) that verifies."""
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    fields = dict(p.split("=", 1) for p in line.split(";") if "=" in p)
    key = next((k for k in keys if k.key_id == fields.get("keyid")), None)
    sig = fields.get("sig", "")
    if key is None or len(sig) != 86:
        return False
    try:
        raw = base64.urlsafe_b64decode(sig + "==")
        Ed25519PublicKey.from_public_bytes(key.raw_public).verify(raw, body)
    except (InvalidSignature, ValueError):
        return False
    return True


def check_written(where: str, sent_md5: bytes, stored: str | bytes | None) -> None:
    """Compare the MD5 the store reports (hex ETag, base64 or raw bytes) with what was sent."""
    if stored is None:
        return
    if isinstance(stored, bytes):
        ok = stored == sent_md5
    else:
        text = stored.strip('"')
        ok = text.lower() == sent_md5.hex() or text == base64.b64encode(sent_md5).decode()
    if not ok:
        raise ExternalToolError(
            f"{where}: the store reports a checksum that is not the uploaded bytes' MD5",
            hint="run publish again; if it persists, check for a proxy rewriting uploads",
        )
