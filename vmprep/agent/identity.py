"""Who is this instance? The configured sources, tried in order, each with a short timeout.

- `azure-imds`: `GET {base}/metadata/instance?api-version=2021-02-01` with `Metadata: true`,
  `compute.vmId`.
- `ec2-imds`: IMDSv2, `PUT {base}/latest/api/token` with `X-aws-ec2-metadata-token-ttl-seconds`,
  then `GET {base}/latest/meta-data/instance-id` with `X-aws-ec2-metadata-token`.
- `gce-metadata`: `GET {base}/computeMetadata/v1/instance/id` with `Metadata-Flavor: Google`,
  the numeric instance id the GCE identity token carries as `google.compute_engine.instance_id`
  (https://cloud.google.com/compute/docs/metadata/predefined-metadata-keys).
- `smbios-uuid`: POSIX `{sys_root}/sys/class/dmi/id/product_uuid`; Windows the raw SMBIOS
  table from `GetSystemFirmwareTable('RSMB')` (ctypes, no process started), type 1 structure.
- `mac`: POSIX `{sys_root}/sys/class/net/*/address` sorted by interface name (those backed by a
  `device` first), `lo` and all-zero addresses skipped; Windows `getmac /fo csv /nh /v`,
  sorted by connection name.

A UUID becomes lower case, a MAC `00-15-5d-01-02-03`. Placeholder UUIDs that broken firmware
reports (all zeros, all ones, `03000200-0400-0500-0006-000700080009`) and values that do not
fit the protocol's id form are skipped for the next source.

This module is on the path to the first step: the HTTP stack (`http.client`, `ssl`, `email`)
is imported only when an IMDS source is tried, `csv` only for `getmac`; no `uuid` or
`dataclasses` (start-up time).
"""

from __future__ import annotations

import os
import re
import subprocess  # loaded already: the platform runs steps with it
import sys
from collections.abc import Callable
from pathlib import Path

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing and the HTTP stack are not imported at run time: start-up time
    from typing import Any

    from vmprep.agent.http import Session

SOURCES = ("azure-imds", "ec2-imds", "gce-metadata", "smbios-uuid", "mac")
DEFAULT_ENDPOINTS = {
    "azure-imds": "http://169.254.169.254",
    "ec2-imds": "http://169.254.169.254",
    "gce-metadata": "http://metadata.google.internal",
}
_HTTP_SOURCES = ("azure-imds", "ec2-imds", "gce-metadata")
_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
_MAC = re.compile(r"[0-9A-Fa-f]{2}([:-]?)[0-9A-Fa-f]{2}(\1[0-9A-Fa-f]{2}){4}")
BOGUS_UUIDS = frozenset(
    {
        "00000000-0000-0000-0000-000000000000",
        "ffffffff-ffff-ffff-ffff-ffffffffffff",
        "03000200-0400-0500-0006-000700080009",
    }
)
_IMDS_MAX = 256 * 1024
# What uuid.UUID accepts, spelled out (the `uuid` module costs start-up time): optional
# `urn:uuid:` and braces, hyphens anywhere, 32 hex digits.
_UUID_HEX = re.compile(r"[0-9A-Fa-f]{32}")
_FIELDS = ("instance_id", "source", "mac", "computer_name")


class Identity:
    """Who this instance is (immutable; a plain class: `dataclasses` costs start-up time)."""

    __slots__ = _FIELDS
    instance_id: str
    source: str
    mac: str | None
    computer_name: str

    def __init__(self, instance_id: str, source: str, mac: str | None, computer_name: str) -> None:
        for name, value in zip(_FIELDS, (instance_id, source, mac, computer_name)):
            object.__setattr__(self, name, value)

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"cannot assign to field {name!r}")

    def _key(self) -> tuple[str, str, str | None, str]:
        return (self.instance_id, self.source, self.mac, self.computer_name)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Identity) and self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __repr__(self) -> str:
        fields = ", ".join(f"{name}={value!r}" for name, value in zip(_FIELDS, self._key()))
        return f"Identity({fields})"


class IdentityError(Exception):
    """No configured source gave a usable id."""


def normalise_uuid(text: str) -> str | None:
    digits = text.strip().replace("urn:", "").replace("uuid:", "").strip("{}").replace("-", "")
    if not _UUID_HEX.fullmatch(digits):
        return None
    h = digits.lower()
    value = f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"
    return None if value in BOGUS_UUIDS else value


def normalise_mac(text: str) -> str | None:
    text = text.strip()
    if not _MAC.fullmatch(text):
        return None
    digits = re.sub(r"[:-]", "", text).lower()
    if digits in ("000000000000", "ffffffffffff"):
        return None
    return "-".join(digits[i : i + 2] for i in range(0, 12, 2))


def valid_id(value: str | None) -> str | None:
    if value is None or not _ID.fullmatch(value) or value.endswith(".sig"):
        return None
    return value


def _session(timeout: float) -> Session:
    from vmprep.agent.http import Session

    return Session(timeout=timeout, allow_http=True)


def azure_imds(base: str, timeout: float) -> str | None:
    import json

    from vmprep.agent.http import HttpError

    response = _session(timeout).request(
        "GET",
        f"{base.rstrip('/')}/metadata/instance?api-version=2021-02-01",
        headers={"Metadata": "true", "Accept": "application/json"},
        max_bytes=_IMDS_MAX,
    )
    if response.status != 200:
        raise HttpError("unreachable", f"Azure IMDS answered HTTP {response.status}")
    try:
        vm_id = json.loads(response.body)["compute"]["vmId"]
    except (ValueError, KeyError, TypeError):
        raise HttpError("unreachable", "Azure IMDS gave no compute.vmId") from None
    return normalise_uuid(vm_id) if isinstance(vm_id, str) else None


def ec2_imds(base: str, timeout: float) -> str | None:
    from vmprep.agent.http import HttpError

    session = _session(timeout)
    base = base.rstrip("/")
    token = session.request(
        "PUT",
        f"{base}/latest/api/token",
        headers={"X-aws-ec2-metadata-token-ttl-seconds": "300"},
        body=b"",
        max_bytes=4096,
    )
    if token.status != 200 or not token.body.strip():
        raise HttpError("unreachable", f"EC2 IMDS token request answered HTTP {token.status}")
    answer = session.request(
        "GET",
        f"{base}/latest/meta-data/instance-id",
        headers={"X-aws-ec2-metadata-token": token.body.decode("ascii", "replace").strip()},
        max_bytes=4096,
    )
    if answer.status != 200:
        raise HttpError("unreachable", f"EC2 IMDS instance-id answered HTTP {answer.status}")
    return valid_id(answer.body.decode("ascii", "replace").strip())


def gce_metadata(base: str, timeout: float) -> str | None:
    from vmprep.agent.http import HttpError

    answer = _session(timeout).request(
        "GET",
        f"{base.rstrip('/')}/computeMetadata/v1/instance/id",
        headers={"Metadata-Flavor": "Google"},
        max_bytes=4096,
    )
    if answer.status != 200:
        raise HttpError("unreachable", f"GCE metadata instance/id answered HTTP {answer.status}")
    value = answer.body.decode("ascii", "replace").strip()
    return value if value.isdigit() else None


def parse_smbios_uuid(table: bytes) -> str | None:
    """The system UUID from a raw SMBIOS table (RawSMBIOSData, header included)."""
    if len(table) < 8:
        return None
    major, minor = table[1], table[2]
    data = table[8 : 8 + int.from_bytes(table[4:8], "little")]
    pos = 0
    while pos + 4 <= len(data):
        kind, length = data[pos], data[pos + 1]
        if length < 4:
            return None
        if kind == 1 and length >= 0x19 and pos + 0x18 <= len(data):
            raw = data[pos + 8 : pos + 0x18]
            if (major, minor) >= (2, 6):  # 2.6 and later store the first three fields LE
                raw = raw[3::-1] + raw[5:3:-1] + raw[7:5:-1] + raw[8:]
            return normalise_uuid(raw.hex())
        end = data.find(b"\0\0", pos + length)  # the strings area ends with two NULs
        if end < 0 or kind == 127:
            return None
        pos = end + 2
    return None


def _firmware_table() -> bytes:  # pragma: no cover - Windows only
    import ctypes

    kernel32 = ctypes.windll.kernel32  # type: ignore[attr-defined]
    rsmb = int.from_bytes(b"RSMB", "big")
    size = kernel32.GetSystemFirmwareTable(rsmb, 0, None, 0)
    buffer = ctypes.create_string_buffer(size)
    if size == 0 or kernel32.GetSystemFirmwareTable(rsmb, 0, buffer, size) != size:
        raise OSError("GetSystemFirmwareTable('RSMB') failed")
    return buffer.raw


def smbios_uuid(sys_root: str) -> str | None:
    if sys.platform == "win32":  # pragma: no cover - Windows only
        return parse_smbios_uuid(_firmware_table())
    path = Path(sys_root, "sys/class/dmi/id/product_uuid")
    return normalise_uuid(path.read_text(encoding="ascii", errors="replace"))


GETMAC_ARGV = ["getmac", "/fo", "csv", "/nh", "/v"]


def getmac_argv() -> list[str]:
    root = os.environ.get("SYSTEMROOT", r"C:\Windows")
    return [root + r"\System32\getmac.exe", *GETMAC_ARGV[1:]]


def parse_getmac(output: str) -> str | None:
    """The first usable MAC of `getmac /fo csv /nh /v` (Connection, Adapter, Address, ...)."""
    import csv
    import io

    rows = [row for row in csv.reader(io.StringIO(output)) if len(row) >= 3]
    for _name, *rest in sorted(rows, key=lambda row: row[0].lower()):
        mac = normalise_mac(rest[1])
        if mac is not None:
            return mac
    return None


def first_mac(sys_root: str, run: Callable[[list[str]], str] | None = None) -> str | None:
    if sys.platform == "win32" or run is not None:
        runner = run or _run_getmac
        return parse_getmac(runner(getmac_argv()))
    net = Path(sys_root, "sys/class/net")
    names = sorted(p.name for p in net.iterdir()) if net.is_dir() else []
    # Interfaces backed by a device (a NIC) first: bridges and veths have made-up addresses.
    for iface in sorted(names, key=lambda name: not (net / name / "device").exists()):
        if iface == "lo":
            continue
        try:
            text = (net / iface / "address").read_text(encoding="ascii", errors="replace")
        except OSError:
            continue
        mac = normalise_mac(text)
        if mac is not None:
            return mac
    return None


def _run_getmac(argv: list[str]) -> str:  # pragma: no cover - Windows only
    no_window = getattr(subprocess, "CREATE_NO_WINDOW", 0)
    done = subprocess.run(
        argv, capture_output=True, timeout=10, check=True, creationflags=no_window
    )
    return done.stdout.decode(errors="replace")


def computer_name() -> str:
    import socket

    if sys.platform == "win32":  # pragma: no cover - Windows only
        return os.environ.get("COMPUTERNAME") or socket.gethostname()
    return socket.gethostname()


def identify(
    sources: list[str],
    *,
    endpoints: dict[str, str] | None = None,
    timeout: float = 2.0,
    sys_root: str = "/",
) -> Identity:
    """The first source that gives a usable id; `IdentityError` naming each failure otherwise."""
    bases = {**DEFAULT_ENDPOINTS, **(endpoints or {})}
    try:
        mac = first_mac(sys_root)
    except (OSError, subprocess.SubprocessError):
        mac = None
    failures: list[str] = []
    for source in sources:
        errors: tuple[type[Exception], ...] = (OSError, ValueError)
        if source in _HTTP_SOURCES:
            from vmprep.agent.http import HttpError

            errors = (HttpError, OSError, ValueError)
        try:
            if source == "azure-imds":
                value = azure_imds(bases[source], timeout)
            elif source == "ec2-imds":
                value = ec2_imds(bases[source], timeout)
            elif source == "gce-metadata":
                value = gce_metadata(bases[source], timeout)
            elif source == "smbios-uuid":
                value = smbios_uuid(sys_root)
            elif source == "mac":
                value = mac
            else:
                failures.append(f"{source}: unknown identity source")
                continue
        except errors as exc:
            failures.append(f"{source}: {exc}")
            continue
        if valid_id(value) is None:
            failures.append(f"{source}: no usable id")
            continue
        assert value is not None
        return Identity(value, source, mac, computer_name())
    raise IdentityError("no identity source gave an id: " + "; ".join(failures or ["none set"]))
