"""`vmprep publish --to s3://... | az://... | gs://...`: the publish tree in object storage.

Each provider lives in its own module (s3.py, azure.py, gcs.py) behind `Bucket`, and imports
its cloud's SDK only when used; the SDKs come from vmprep's `s3`, `azure` and `gcs` extras.
Credentials come from each SDK's own chain (environment, profile, managed identity), never from
the command line. The order of writes and the grace for stale objects: sync.py.
"""

from __future__ import annotations

import importlib
import importlib.util
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from vmprep.errors import UsageError

if TYPE_CHECKING:
    from vmprep.server.keys import SigningKey

# scheme -> (module under vmprep.server.upload, extra, the SDK modules it needs)
PROVIDERS: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "s3": ("s3", "s3", ("boto3",)),
    "az": ("azure", "azure", ("azure.storage.blob",)),
    "gs": ("gcs", "gcs", ("google.cloud.storage",)),
}


@dataclass(frozen=True)
class Target:
    scheme: str  # s3, az or gs
    bucket: str  # the bucket (S3, GCS) or container (Azure Blob)
    prefix: str  # "" or "a/b": no leading or trailing slash

    def __str__(self) -> str:
        return f"{self.scheme}://{self.bucket}/{self.prefix}".rstrip("/")

    def key(self, rel: str) -> str:
        return f"{self.prefix}/{rel}" if self.prefix else rel


def is_remote(value: str) -> bool:
    return value.split("://", 1)[0] in PROVIDERS and "://" in value


def parse_target(value: str) -> Target:
    """`s3://bucket/prefix` and the like; UsageError for anything else."""
    scheme, sep, rest = value.partition("://")
    if not sep or scheme not in PROVIDERS:
        raise UsageError(
            f"--to {value!r}: expected s3://bucket/prefix, az://container/prefix or "
            "gs://bucket/prefix"
        )
    bucket, _, prefix = rest.partition("/")
    parts = [p for p in prefix.split("/") if p]
    if not bucket or any(p in (".", "..") for p in parts) or "?" in rest or "#" in rest:
        raise UsageError(
            f"--to {value!r}: needs a bucket (or container) name, and a prefix without "
            ". or .. segments, query or fragment"
        )
    return Target(scheme, bucket, "/".join(parts))


class Bucket(Protocol):
    """The four operations publishing needs; each raises ExternalToolError when the store fails."""

    def read(self, key: str) -> bytes | None:
        """The object's bytes, or None when there is none."""

    def write(self, key: str, data: bytes, *, content_type: str, cache_control: str) -> None:
        """Store `data` and check what the store kept (MD5 / ETag) against it."""

    def keys(self, prefix: str) -> list[str]:
        """Every key that starts with `prefix`."""

    def delete(self, key: str) -> None:
        """Remove the object (gone already is fine)."""


def open_bucket(target: Target, endpoint_url: str | None) -> Bucket:
    """The provider's Bucket; a missing extra is a UsageError naming it."""
    module, extra, needs = PROVIDERS[target.scheme]
    missing = [m for m in needs if not _importable(m)]
    if missing:
        raise UsageError(
            f"--to {target.scheme}:// needs {', '.join(missing)}, from vmprep's `{extra}` extra",
            hint=f"pip install 'vmprep[{extra}]'",
        )
    provider = importlib.import_module(f"vmprep.server.upload.{module}")
    bucket: Bucket = provider.open_bucket(target.bucket, endpoint_url)
    return bucket


def _importable(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:  # a parent package is missing
        return False


@dataclass
class Uploaded:
    serial: int
    documents: list[str]
    skipped: list[str]
    deleted: list[str]
    kept_stale: list[str]


def publish_to(
    configs: Path,
    keys: list[SigningKey],
    target: Target,
    *,
    endpoint_url: str | None = None,
    base: str = "",
    allow_secrets: bool = False,
    grace: float = 24 * 3600.0,
    now: float | None = None,
) -> Uploaded:
    """Build the publish tree in memory and write it to `target` (sync.py: in which order)."""
    from vmprep.server.publish import build
    from vmprep.server.upload.sync import read_previous, upload_tree

    bucket = open_bucket(target, endpoint_url)
    previous = read_previous(bucket, target)
    when = time.time() if now is None else now
    files, result = build(
        configs, keys, previous.serial, base=base, allow_secrets=allow_secrets, now=when
    )
    synced = upload_tree(bucket, target, files, keys, previous, now=when, grace=grace)
    return Uploaded(
        result.serial, result.documents, result.skipped, synced.deleted, synced.kept_stale
    )
