"""Azure Blob Storage through azure-storage-blob, vmprep's `azure` extra.

Which account, and how to sign in, in this order:
- `AZURE_STORAGE_CONNECTION_STRING` (the SDK's and the az CLI's variable; Azurite's well-known
  one works too), when set;
- otherwise the account URL `--endpoint-url`, or `https://$AZURE_STORAGE_ACCOUNT.blob.core.windows.net`,
  signed in with azure-identity's DefaultAzureCredential (environment, workload or managed
  identity, the az CLI's login):
  https://learn.microsoft.com/python/api/overview/azure/identity-readme#defaultazurecredential

Integrity: every upload sends its MD5 both as the transactional `Content-MD5`, which the
service checks before storing (`validate_content=True`), and as the blob's stored
`Content-MD5` property, which the response's `content_md5` is compared with:
https://learn.microsoft.com/rest/api/storageservices/put-blob#request-headers-all-blob-types
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from collections.abc import Iterator
from typing import Any

from vmprep.errors import ExternalToolError, UsageError
from vmprep.server.upload.sync import check_written


def open_bucket(container: str, endpoint_url: str | None) -> AzureContainer:
    from azure.storage.blob import BlobServiceClient

    where = f"az://{container}"
    connection = os.environ.get("AZURE_STORAGE_CONNECTION_STRING")
    with _errors(where):
        if connection and endpoint_url is None:
            service = BlobServiceClient.from_connection_string(connection)
        else:
            account = os.environ.get("AZURE_STORAGE_ACCOUNT")
            if endpoint_url is None and not account:
                raise UsageError(
                    f"{where}: which storage account?",
                    hint="set AZURE_STORAGE_CONNECTION_STRING or AZURE_STORAGE_ACCOUNT, or "
                    "pass --endpoint-url https://<account>.blob.core.windows.net",
                )
            try:
                from azure.identity import DefaultAzureCredential
            except ImportError:
                raise UsageError(
                    f"{where}: signing in needs azure-identity, from vmprep's `azure` extra",
                    hint="pip install 'vmprep[azure]'",
                ) from None
            url = endpoint_url or f"https://{account}.blob.core.windows.net"
            service = BlobServiceClient(url, credential=DefaultAzureCredential())
        client = service.get_container_client(container)
    return AzureContainer(client, container)


@contextlib.contextmanager
def _errors(where: str) -> Iterator[None]:
    from azure.core.exceptions import AzureError, ClientAuthenticationError, HttpResponseError

    try:
        yield
    except ClientAuthenticationError as exc:
        raise ExternalToolError(
            f"{where}: not signed in: {_first_line(exc)}",
            hint="credentials come from the environment, a managed identity or `az login`",
        ) from None
    except HttpResponseError as exc:
        raise ExternalToolError(
            f"{where}: Azure refused: {getattr(exc, 'error_code', None) or exc.status_code}: {_first_line(exc)}",
            hint="check the container name and the identity's role (Storage Blob Data Contributor)",
        ) from None
    except AzureError as exc:
        raise ExternalToolError(f"{where}: {_first_line(exc)}") from None
    except ValueError as exc:  # a malformed connection string or account URL
        raise UsageError(f"{where}: {exc}") from None


def _first_line(exc: Exception) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


class AzureContainer:
    def __init__(self, client: Any, name: str) -> None:
        self.client = client
        self.name = name

    def read(self, key: str) -> bytes | None:
        from azure.core.exceptions import ResourceNotFoundError

        with _errors(f"az://{self.name}/{key}"):
            try:
                data: bytes = self.client.download_blob(key).readall()
            except ResourceNotFoundError:
                return None
            return data

    def write(self, key: str, data: bytes, *, content_type: str, cache_control: str) -> None:
        from azure.storage.blob import ContentSettings

        md5 = hashlib.md5(data, usedforsecurity=False).digest()
        settings = ContentSettings(
            content_type=content_type, cache_control=cache_control, content_md5=bytearray(md5)
        )
        with _errors(f"az://{self.name}/{key}"):
            response = self.client.get_blob_client(key).upload_blob(
                data, overwrite=True, content_settings=settings, validate_content=True
            )
        stored = response.get("content_md5")
        check_written(f"az://{self.name}/{key}", md5, None if stored is None else bytes(stored))

    def keys(self, prefix: str) -> list[str]:
        with _errors(f"az://{self.name}/{prefix}"):
            return [blob.name for blob in self.client.list_blobs(name_starts_with=prefix)]

    def delete(self, key: str) -> None:
        from azure.core.exceptions import ResourceNotFoundError

        with _errors(f"az://{self.name}/{key}"), contextlib.suppress(ResourceNotFoundError):
            self.client.delete_blob(key)
