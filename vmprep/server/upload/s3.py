"""Amazon S3 (and S3-compatible stores) through boto3, vmprep's `s3` extra.

Credentials and region: boto3's own chain (environment, shared config/credentials profile,
container or instance role), https://boto3.amazonaws.com/v1/documentation/api/latest/guide/credentials.html.
`--endpoint-url` points it at an S3-compatible store or an emulator.

Integrity: each PUT carries `Content-MD5`, which S3 checks before storing the object
(https://docs.aws.amazon.com/AmazonS3/latest/API/API_PutObject.html); the returned ETag is
also compared with the MD5 when it is one (not for SSE-KMS or SSE-C objects, whose ETag is
not the MD5 of the data: https://docs.aws.amazon.com/AmazonS3/latest/API/API_Object.html).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
from collections.abc import Iterator
from typing import Any

from vmprep.errors import ExternalToolError
from vmprep.server.upload.sync import check_written


def open_bucket(name: str, endpoint_url: str | None) -> S3Bucket:
    import boto3

    with _errors(f"s3://{name}"):
        client = boto3.client("s3", endpoint_url=endpoint_url)
    return S3Bucket(client, name)


@contextlib.contextmanager
def _errors(where: str) -> Iterator[None]:
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        yield
    except ClientError as exc:
        error = exc.response.get("Error", {})
        raise ExternalToolError(
            f"{where}: S3 refused: {error.get('Code', '?')}: {error.get('Message', '')}",
            hint="check the bucket name, region and the credentials' permissions",
        ) from None
    except BotoCoreError as exc:
        raise ExternalToolError(
            f"{where}: {exc}",
            hint="credentials come from boto3's chain (AWS_* variables, a profile, a role)",
        ) from None


class S3Bucket:
    def __init__(self, client: Any, name: str) -> None:
        self.client = client
        self.name = name

    def read(self, key: str) -> bytes | None:
        with _errors(f"s3://{self.name}/{key}"):
            try:
                response = self.client.get_object(Bucket=self.name, Key=key)
            except self.client.exceptions.NoSuchKey:
                return None
            data: bytes = response["Body"].read()
            return data

    def write(self, key: str, data: bytes, *, content_type: str, cache_control: str) -> None:
        md5 = hashlib.md5(data, usedforsecurity=False).digest()
        with _errors(f"s3://{self.name}/{key}"):
            response = self.client.put_object(
                Bucket=self.name,
                Key=key,
                Body=data,
                ContentType=content_type,
                CacheControl=cache_control,
                ContentMD5=base64.b64encode(md5).decode("ascii"),
            )
        kms = str(response.get("ServerSideEncryption", "")).startswith("aws:kms")
        if not kms and "SSECustomerAlgorithm" not in response:
            check_written(f"s3://{self.name}/{key}", md5, response.get("ETag"))

    def keys(self, prefix: str) -> list[str]:
        found: list[str] = []
        with _errors(f"s3://{self.name}/{prefix}"):
            pages = self.client.get_paginator("list_objects_v2")
            for page in pages.paginate(Bucket=self.name, Prefix=prefix):
                found.extend(item["Key"] for item in page.get("Contents", []))
        return found

    def delete(self, key: str) -> None:
        with _errors(f"s3://{self.name}/{key}"):
            self.client.delete_object(Bucket=self.name, Key=key)
