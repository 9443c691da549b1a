"""Object-storage emulators as plain processes on 127.0.0.1 (tests and benchmarks).

- S3: moto in server mode (PyPI `moto[server]`, in the `test` extra).
- Azure Blob: Azurite from the npm registry, installed with `npm install azurite` into
  ~/.cache/vmprep-azurite (or $VMPREP_AZURITE_DIR) when missing; needs node and npm.
- Google Cloud Storage: gcp-storage-emulator (PyPI, pure Python, in the `test` extra).

`emulator_or_skip` skips a test whose emulator cannot start, and fails it instead when
VMPREP_OBJSTORE_REQUIRED=1 (.ci/run sets it).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest

AZURITE_ACCOUNT = "devstoreaccount1"
# Azurite's well-known development key (public, the same in every Azurite):
# https://learn.microsoft.com/azure/storage/common/storage-use-azurite#http-connection-strings
AZURITE_KEY = (
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)
AZURITE_DIR = Path(os.environ.get("VMPREP_AZURITE_DIR", Path.home() / ".cache/vmprep-azurite"))
T = TypeVar("T")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Emulator:
    def __init__(self, argv: list[str], port: int, log: Path, env: dict[str, str] | None = None):
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.log = log
        self._out = log.open("wb")
        self.proc = subprocess.Popen(
            argv,
            stdout=self._out,
            stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})},
            start_new_session=True,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                self._out.close()
                raise RuntimeError(f"{argv[0]} exited {self.proc.returncode}: {log.read_text()}")
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"{argv[0]} did not start listening: {log.read_text()}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._out.close()


def moto(tmp: Path) -> Emulator:
    port = free_port()
    moto_server = Path(sys.executable).with_name("moto_server")
    if not moto_server.exists():
        raise RuntimeError("moto_server is not installed (pip install 'vmprep[test]')")
    return Emulator([str(moto_server), "-H", "127.0.0.1", "-p", str(port)], port, tmp / "moto.log")


def azurite_bin() -> Path:
    """Azurite's blob server, installed from the npm registry into AZURITE_DIR when missing."""
    binary = AZURITE_DIR / "node_modules" / ".bin" / "azurite-blob"
    if binary.exists():
        return binary
    npm = shutil.which("npm")
    if npm is None or shutil.which("node") is None:
        raise RuntimeError("Azurite needs node and npm (apt-get install -y nodejs npm)")
    AZURITE_DIR.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [
            npm,
            "install",
            "--no-audit",
            "--no-fund",
            "--silent",
            "--prefix",
            str(AZURITE_DIR),
            "azurite@3",
        ],
        check=True,
        capture_output=True,
        timeout=600,
    )
    return binary


def azurite(tmp: Path) -> Emulator:
    binary = azurite_bin()
    port = free_port()
    data = tmp / "azurite"
    data.mkdir(parents=True, exist_ok=True)
    argv = [str(binary), "--blobHost", "127.0.0.1", "--blobPort", str(port)]
    argv += ["--location", str(data), "--silent", "--skipApiVersionCheck", "--loose"]
    return Emulator(argv, port, tmp / "azurite.log")


def azurite_connection_string(emulator: Emulator) -> str:
    return (
        f"DefaultEndpointsProtocol=http;AccountName={AZURITE_ACCOUNT};AccountKey={AZURITE_KEY};"
        f"BlobEndpoint={emulator.url}/{AZURITE_ACCOUNT};"
    )


def gcs(tmp: Path) -> Emulator:
    port = free_port()
    binary = Path(sys.executable).with_name("gcp-storage-emulator")
    if not binary.exists():
        raise RuntimeError("gcp-storage-emulator is not installed (pip install 'vmprep[test]')")
    argv = [str(binary), "start", "--host", "127.0.0.1", "--port", str(port), "--in-memory"]
    return Emulator(argv, port, tmp / "gcs.log")


def emulator_or_skip(start: Callable[[], T]) -> T:
    try:
        return start()
    except (RuntimeError, OSError, subprocess.SubprocessError) as exc:
        if os.environ.get("VMPREP_OBJSTORE_REQUIRED") == "1":
            pytest.fail(f"object-storage emulator unavailable: {exc}")
        pytest.skip(f"object-storage emulator unavailable: {exc}")


class Provider:
    """One emulator with a public-read bucket (as a CDN origin would be), the environment the
    SDK signs in with, and the anonymous URL agents read the published prefix from."""

    scheme = ""
    bucket = "vmprep-fleet"

    def __init__(self, emulator: Emulator) -> None:
        self.emulator = emulator
        self.env: dict[str, str] = {}
        self.endpoint: str | None = None

    def target(self, prefix: str) -> str:
        return f"{self.scheme}://{self.bucket}/{prefix}"

    def public_url(self, prefix: str) -> str:
        return f"{self.emulator.url}/{self.bucket}/{prefix}"

    def create_bucket(self) -> None:
        raise NotImplementedError

    def head(self, key: str) -> tuple[str, str | None]:
        """The stored object's Content-Type and Cache-Control."""
        raise NotImplementedError

    def put(self, key: str, data: bytes) -> None:
        """An object written behind publish's back (a foreign object)."""
        raise NotImplementedError


class S3(Provider):
    scheme = "s3"

    def __init__(self, emulator: Emulator) -> None:
        super().__init__(emulator)
        self.env = {
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
        }
        self.endpoint = emulator.url

    def client(self) -> Any:
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=self.emulator.url,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
            region_name="us-east-1",
        )

    def create_bucket(self) -> None:
        # Anonymous reads of the published documents only, as docs/scale.md shows.
        policy = {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": "*",
                    "Action": "s3:GetObject",
                    "Resource": f"arn:aws:s3:::{self.bucket}/*",
                }
            ],
        }
        client = self.client()
        client.create_bucket(Bucket=self.bucket)
        client.put_bucket_policy(Bucket=self.bucket, Policy=json.dumps(policy))

    def head(self, key: str) -> tuple[str, str | None]:
        got = self.client().head_object(Bucket=self.bucket, Key=key)
        return got["ContentType"], got.get("CacheControl")

    def put(self, key: str, data: bytes) -> None:
        self.client().put_object(Bucket=self.bucket, Key=key, Body=data)


class Azure(Provider):
    scheme = "az"

    def __init__(self, emulator: Emulator) -> None:
        super().__init__(emulator)
        self.env = {"AZURE_STORAGE_CONNECTION_STRING": azurite_connection_string(emulator)}

    def public_url(self, prefix: str) -> str:
        return f"{self.emulator.url}/{AZURITE_ACCOUNT}/{self.bucket}/{prefix}"

    def container(self) -> Any:
        from azure.storage.blob import BlobServiceClient

        service = BlobServiceClient.from_connection_string(azurite_connection_string(self.emulator))
        return service.get_container_client(self.bucket)

    def create_bucket(self) -> None:
        self.container().create_container(public_access="blob")  # anonymous blob reads

    def head(self, key: str) -> tuple[str, str | None]:
        settings = self.container().get_blob_client(key).get_blob_properties().content_settings
        return settings.content_type, settings.cache_control

    def put(self, key: str, data: bytes) -> None:
        self.container().upload_blob(key, data, overwrite=True)


class Gcs(Provider):
    scheme = "gs"

    def __init__(self, emulator: Emulator) -> None:
        super().__init__(emulator)
        self.env = {"STORAGE_EMULATOR_HOST": emulator.url, "GOOGLE_CLOUD_PROJECT": "vmprep"}

    def bucket_handle(self) -> Any:
        from google.auth.credentials import AnonymousCredentials
        from google.cloud import storage

        os.environ["STORAGE_EMULATOR_HOST"] = self.emulator.url
        client = storage.Client(project="vmprep", credentials=AnonymousCredentials())  # type: ignore[no-untyped-call]
        return client.bucket(self.bucket)

    def create_bucket(self) -> None:
        # The emulator has no access control: every object reads anonymously, as a bucket with
        # allUsers:objectViewer does on Google Cloud (docs/scale.md).
        self.bucket_handle().create()

    def head(self, key: str) -> tuple[str, str | None]:
        blob = self.bucket_handle().get_blob(key)
        return blob.content_type, blob.cache_control

    def put(self, key: str, data: bytes) -> None:
        self.bucket_handle().blob(key).upload_from_string(data)


STARTERS: dict[str, tuple[Callable[[Path], Emulator], type[Provider]]] = {
    "s3": (moto, S3),
    "az": (azurite, Azure),
    "gs": (gcs, Gcs),
}


def start_provider(scheme: str, tmp: Path) -> Provider:
    start, kind = STARTERS[scheme]
    emulator = emulator_or_skip(lambda: start(tmp))
    provider = kind(emulator)
    provider.create_bucket()
    return provider
