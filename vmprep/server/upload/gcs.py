"""Google Cloud Storage through google-cloud-storage, vmprep's `gcs` extra.

Credentials: Application Default Credentials (GOOGLE_APPLICATION_CREDENTIALS, `gcloud auth
application-default login`, the metadata server of a GCE VM / GKE workload):
https://cloud.google.com/docs/authentication/application-default-credentials. The project is
the credentials' own, or GOOGLE_CLOUD_PROJECT. `--endpoint-url` (or the library's own
STORAGE_EMULATOR_HOST) points it at an emulator or a private endpoint; with STORAGE_EMULATOR_HOST
the library signs in anonymously.

Integrity: each upload asks the library to compare the MD5 the service computed with the
uploaded bytes' (`checksum="md5"`), and the blob's stored `md5Hash` is compared again here:
https://cloud.google.com/storage/docs/hashes-etags
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from collections.abc import Iterator
from typing import Any

from vmprep.errors import ExternalToolError
from vmprep.server.upload.sync import check_written


def open_bucket(name: str, endpoint_url: str | None) -> GcsBucket:
    from google.cloud import storage

    where = f"gs://{name}"
    with _errors(where):
        if endpoint_url is not None:
            client = storage.Client(client_options={"api_endpoint": endpoint_url})
        elif os.environ.get("STORAGE_EMULATOR_HOST"):
            from google.auth.credentials import AnonymousCredentials

            project = os.environ.get("GOOGLE_CLOUD_PROJECT", "vmprep")
            client = storage.Client(
                project=project,
                credentials=AnonymousCredentials(),  # type: ignore[no-untyped-call]
            )
        else:
            client = storage.Client()
    return GcsBucket(client, name)


@contextlib.contextmanager
def _errors(where: str) -> Iterator[None]:
    from google.api_core.exceptions import GoogleAPIError
    from google.auth.exceptions import GoogleAuthError
    from google.resumable_media.common import DataCorruption

    try:
        yield
    except DataCorruption as exc:
        raise ExternalToolError(f"{where}: the stored object's MD5 differs: {exc}") from None
    except GoogleAuthError as exc:
        raise ExternalToolError(
            f"{where}: not signed in: {exc}",
            hint="credentials come from Application Default Credentials "
            "(GOOGLE_APPLICATION_CREDENTIALS, gcloud, the metadata server)",
        ) from None
    except GoogleAPIError as exc:
        raise ExternalToolError(
            f"{where}: Google Cloud Storage refused: {exc}",
            hint="check the bucket name and the account's role (Storage Object Admin)",
        ) from None
    except OSError as exc:  # requests' connection errors are OSErrors
        raise ExternalToolError(f"{where}: {exc}") from None


class GcsBucket:
    def __init__(self, client: Any, name: str) -> None:
        self.client = client
        self.bucket = client.bucket(name)
        self.name = name

    def read(self, key: str) -> bytes | None:
        from google.api_core.exceptions import NotFound

        with _errors(f"gs://{self.name}/{key}"):
            try:
                data: bytes = self.bucket.blob(key).download_as_bytes()
            except NotFound:
                return None
            return data

    def write(self, key: str, data: bytes, *, content_type: str, cache_control: str) -> None:
        import base64

        md5 = hashlib.md5(data, usedforsecurity=False).digest()
        blob = self.bucket.blob(key)
        blob.cache_control = cache_control
        blob.md5_hash = base64.b64encode(md5).decode("ascii")
        with _errors(f"gs://{self.name}/{key}"):
            blob.upload_from_string(data, content_type=content_type, checksum="md5")
        check_written(f"gs://{self.name}/{key}", md5, blob.md5_hash)

    def keys(self, prefix: str) -> list[str]:
        with _errors(f"gs://{self.name}/{prefix}"):
            return [blob.name for blob in self.client.list_blobs(self.name, prefix=prefix)]

    def delete(self, key: str) -> None:
        from google.api_core.exceptions import NotFound

        with _errors(f"gs://{self.name}/{key}"), contextlib.suppress(NotFound):
            self.bucket.blob(key).delete()
