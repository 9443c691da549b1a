"""Identity sources against loopback metadata servers and a fake /sys tree."""

from __future__ import annotations

import json
import socket
import struct
import uuid
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.agent.net.conftest import Reply, Seen, Server, free_port
from vmprep.agent import identity as ident
from vmprep.agent.identity import (
    BOGUS_UUIDS,
    Identity,
    IdentityError,
    identify,
    normalise_mac,
    normalise_uuid,
    parse_getmac,
    parse_smbios_uuid,
)

VM_ID = "1C2D3E4F-AAAA-4BBB-8CCC-0123456789AB"


def fake_sys(root: Path, *, uuid_text: str | None = None, nics: dict[str, str] | None = None):
    if uuid_text is not None:
        dmi = root / "sys/class/dmi/id"
        dmi.mkdir(parents=True)
        (dmi / "product_uuid").write_text(uuid_text + "\n")
    for name, address in (nics or {}).items():
        nic = root / "sys/class/net" / name
        nic.mkdir(parents=True)
        (nic / "address").write_text(address + "\n")
    return str(root)


def test_azure_imds(server: Server, tmp_path: Path):
    server.route(
        "/metadata/instance?api-version=2021-02-01",
        Reply(200, json.dumps({"compute": {"vmId": VM_ID, "name": "web"}}).encode()),
    )
    root = fake_sys(tmp_path, nics={"eth0": "00:15:5D:01:02:03"})
    found = identify(["azure-imds", "mac"], endpoints={"azure-imds": server.url("")}, sys_root=root)
    assert found == Identity(VM_ID.lower(), "azure-imds", "00-15-5d-01-02-03", socket.gethostname())
    assert server.requests[0].headers["metadata"] == "true"
    assert server.requests[0].method == "GET"


def test_ec2_imds_v2_token_first(server: Server, tmp_path: Path):
    def instance_id(seen: Seen) -> Reply:
        ok = seen.headers.get("x-aws-ec2-metadata-token") == "TOKEN123"
        return Reply(200, b"i-0123456789abcdef0") if ok else Reply(401)

    server.route("/latest/api/token", Reply(200, b"TOKEN123"))
    server.route("/latest/meta-data/instance-id", instance_id)
    found = identify(
        ["ec2-imds"], endpoints={"ec2-imds": server.url("/")}, sys_root=fake_sys(tmp_path)
    )
    assert (found.instance_id, found.source, found.mac) == ("i-0123456789abcdef0", "ec2-imds", None)
    put, get = server.requests
    assert (put.method, put.path) == ("PUT", "/latest/api/token")
    assert int(put.headers["x-aws-ec2-metadata-token-ttl-seconds"]) > 0
    assert (get.method, get.headers["x-aws-ec2-metadata-token"]) == ("GET", "TOKEN123")


def test_sources_fall_through_in_order(server: Server, tmp_path: Path):
    server.route("/metadata/instance?api-version=2021-02-01", Reply(500))
    root = fake_sys(
        tmp_path,
        uuid_text="00000000-0000-0000-0000-000000000000",
        nics={"lo": "00:00:00:00:00:00", "eth1": "aa:bb:cc:dd:ee:ff", "eth0": "00:15:5d:0A:0B:0C"},
    )
    endpoints = {"azure-imds": server.url(""), "ec2-imds": f"http://127.0.0.1:{free_port()}"}
    found = identify(
        ["azure-imds", "ec2-imds", "smbios-uuid", "mac"],
        endpoints=endpoints,
        sys_root=root,
        timeout=1.0,
    )
    # Azure 500, EC2 down, SMBIOS all-zero: the first MAC by interface name.
    assert (found.instance_id, found.source) == ("00-15-5d-0a-0b-0c", "mac")


def test_smbios_uuid_from_sys(tmp_path: Path):
    root = fake_sys(tmp_path, uuid_text="EC2A1B2C-3D4E-5F60-7182-93A4B5C6D7E8")
    found = identify(["smbios-uuid"], sys_root=root)
    assert (found.instance_id, found.source) == (
        "ec2a1b2c-3d4e-5f60-7182-93a4b5c6d7e8",
        "smbios-uuid",
    )


def test_nothing_usable_is_a_clear_error(tmp_path: Path):
    root = fake_sys(
        tmp_path, uuid_text="FFFFFFFF-FFFF-FFFF-FFFF-FFFFFFFFFFFF", nics={"lo": "00:00:00:00:00:00"}
    )
    with pytest.raises(IdentityError) as info:
        identify(
            ["azure-imds", "smbios-uuid", "mac", "bogus"],
            endpoints={"azure-imds": f"http://127.0.0.1:{free_port()}"},
            sys_root=root,
            timeout=0.5,
        )
    message = str(info.value)
    for part in ("azure-imds:", "smbios-uuid: no usable id", "mac: no usable id", "bogus: unknown"):
        assert part in message


def test_stalled_imds_is_bounded_by_the_short_timeout(server: Server, tmp_path: Path):
    server.route(
        "/metadata/instance?api-version=2021-02-01", Reply(200, b"{", content_length=50, stall=10)
    )
    root = fake_sys(tmp_path, nics={"eth0": "00:15:5d:01:02:03"})
    found = identify(
        ["azure-imds", "mac"], endpoints={"azure-imds": server.url("")}, timeout=0.3, sys_root=root
    )
    assert found.source == "mac"


@pytest.mark.parametrize(
    "body", [b"not json", b"{}", b'{"compute": {}}', b'{"compute": {"vmId": 5}}', b"[1]"]
)
def test_azure_imds_without_a_vm_id_moves_on(server: Server, tmp_path: Path, body: bytes):
    server.route("/metadata/instance?api-version=2021-02-01", Reply(200, body))
    root = fake_sys(tmp_path, nics={"eth0": "00:15:5d:01:02:03"})
    found = identify(["azure-imds", "mac"], endpoints={"azure-imds": server.url("")}, sys_root=root)
    assert found.source == "mac"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("EC2A1B2C-3D4E-5F60-7182-93A4B5C6D7E8", "ec2a1b2c-3d4e-5f60-7182-93a4b5c6d7e8"),
        ("{ec2a1b2c-3d4e-5f60-7182-93a4b5c6d7e8}", "ec2a1b2c-3d4e-5f60-7182-93a4b5c6d7e8"),
        ("00000000-0000-0000-0000-000000000000", None),
        ("FFFFFFFF-FFFF-FFFF-FFFF-FFFFFFFFFFFF", None),
        ("03000200-0400-0500-0006-000700080009", None),
        ("Not Settable", None),
        ("", None),
    ],
)
def test_normalise_uuid(text: str, expected: str | None):
    assert normalise_uuid(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("00:15:5D:01:02:03", "00-15-5d-01-02-03"),
        ("00-15-5d-01-02-03", "00-15-5d-01-02-03"),
        ("00155D010203", "00-15-5d-01-02-03"),
        ("00:00:00:00:00:00", None),
        ("ff:ff:ff:ff:ff:ff", None),
        ("00:15:5d-01:02:03", None),
        ("80:00:02:08:fe:80:00:00:00:00:00:00:00:00:00:00:00:00:00:00", None),  # infiniband
        ("N/A", None),
    ],
)
def test_normalise_mac(text: str, expected: str | None):
    assert normalise_mac(text) == expected


@given(st.binary(min_size=6, max_size=6))
def test_normalised_macs_are_valid_ids(raw: bytes):
    mac = normalise_mac(raw.hex(":"))
    if mac is not None:
        assert ident.valid_id(mac) == mac
        assert len(mac) == 17


def smbios_table(system_uuid: uuid.UUID, version: tuple[int, int] = (3, 4)) -> bytes:
    bios = bytes([0, 0x18]) + struct.pack("<H", 0) + bytes(0x18 - 4) + b"Vendor\0Ver\0\0"
    formatted = bytes([1, 0x1B]) + struct.pack("<H", 1) + bytes([1, 2, 0, 0])
    raw = system_uuid.bytes_le if version >= (2, 6) else system_uuid.bytes
    formatted += raw + bytes([6, 0, 0])
    system = formatted + b"Maker\0Model\0\0"
    end = bytes([127, 4]) + struct.pack("<H", 2) + b"\0\0"
    data = bios + system + end
    return bytes([0, version[0], version[1], 0]) + struct.pack("<I", len(data)) + data


@pytest.mark.parametrize("version", [(2, 4), (2, 6), (3, 4)])
def test_parse_smbios_uuid_from_the_raw_firmware_table(version: tuple[int, int]):
    value = uuid.UUID("ec2a1b2c-3d4e-5f60-7182-93a4b5c6d7e8")
    assert parse_smbios_uuid(smbios_table(value, version)) == str(value)


def test_parse_smbios_uuid_rejects_bogus_and_truncated_tables():
    assert parse_smbios_uuid(smbios_table(uuid.UUID(int=0))) is None
    assert parse_smbios_uuid(b"") is None
    assert parse_smbios_uuid(smbios_table(uuid.uuid4())[:20]) is None


@given(st.binary(max_size=200))
def test_parse_smbios_uuid_never_raises(table: bytes):
    result = parse_smbios_uuid(table)
    assert result is None or normalise_uuid(result) == result


GETMAC = """\
"Wi-Fi","Intel(R) Wi-Fi 6 AX201","N/A","Media disconnected"
"Ethernet 2","Hyper-V Virtual Ethernet Adapter","00-15-5D-0A-0B-0C","\\Device\\Tcpip_{1234}"
"Bluetooth","Bluetooth Device (PAN)","00-00-00-00-00-00","Media disconnected"
"Ethernet","Microsoft Hyper-V Network Adapter","00-15-5D-01-02-03","\\Device\\Tcpip_{5678}"
"""


def test_parse_getmac_picks_the_first_usable_by_connection_name():
    assert parse_getmac(GETMAC) == "00-15-5d-01-02-03"
    assert parse_getmac("") is None
    assert parse_getmac('"x","y","N/A","z"\n') is None


def test_getmac_argv_and_windows_path(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("SYSTEMROOT", r"C:\Windows")
    assert ident.getmac_argv() == [r"C:\Windows\System32\getmac.exe", "/fo", "csv", "/nh", "/v"]
    seen: list[list[str]] = []

    def run(argv: list[str]) -> str:
        seen.append(argv)
        return GETMAC

    assert ident.first_mac("/", run=run) == "00-15-5d-01-02-03"
    assert seen == [ident.getmac_argv()]


def test_mac_skips_unreadable_and_odd_interfaces(tmp_path: Path):
    root = fake_sys(
        tmp_path, nics={"a0": "garbage", "b0": "00:00:00:00:00:00", "c0": "02:42:ac:11:00:02"}
    )
    (tmp_path / "sys/class/net/a1").mkdir()  # no address file
    assert ident.first_mac(root) == "02-42-ac-11-00-02"
    assert ident.first_mac(str(tmp_path / "nowhere")) is None


def test_ec2_id_must_fit_the_id_form(server: Server, tmp_path: Path):
    server.route("/latest/api/token", Reply(200, b"T"))
    server.route("/latest/meta-data/instance-id", Reply(200, b"../../etc"))
    with pytest.raises(IdentityError, match="ec2-imds: no usable id"):
        identify(["ec2-imds"], endpoints={"ec2-imds": server.url("")}, sys_root=fake_sys(tmp_path))


def test_mac_prefers_interfaces_backed_by_a_device(tmp_path: Path):
    nics = {
        "br-1": "02:42:aa:bb:cc:dd",
        "docker0": "02:42:11:22:33:44",
        "ens3": "00:15:5d:01:02:03",
    }
    root = fake_sys(tmp_path, nics=nics)
    assert ident.first_mac(root) == "02-42-aa-bb-cc-dd"  # no devices at all: by name
    (tmp_path / "sys/class/net/ens3/device").mkdir()
    assert ident.first_mac(root) == "00-15-5d-01-02-03"


@given(st.uuids(), st.sampled_from(["{}", "urn:uuid:{}", "{{{}}}", " {} \n"]), st.booleans())
def test_uuid_forms_normalise_as_the_uuid_module_reads_them(value, form, upper) -> None:
    text = form.format(value.hex if upper else str(value))
    text = text.upper().replace("URN:UUID:", "urn:uuid:") if upper else text
    expected = str(uuid.UUID(text.strip()))
    assert normalise_uuid(text) == (None if expected in BOGUS_UUIDS else expected)


@given(st.binary(min_size=16, max_size=16), st.sampled_from([(2, 5), (2, 6), (3, 4)]))
def test_smbios_uuid_byte_order_matches_the_uuid_module(raw: bytes, version) -> None:
    structure = bytes([1, 0x1B, 0, 0]) + b"\0" * 4 + raw + b"\0" * 3 + b"\0\0"
    table = bytes([0, *version, 0]) + len(structure).to_bytes(4, "little") + structure
    value = uuid.UUID(bytes_le=raw) if version >= (2, 6) else uuid.UUID(bytes=raw)
    expected = str(value)
    assert parse_smbios_uuid(table) == (None if expected in BOGUS_UUIDS else expected)


def test_identity_is_immutable_and_compares_by_value() -> None:
    a = Identity("i-1", "mac", None, "h")
    assert a == Identity("i-1", "mac", None, "h")
    assert hash(a) == hash(Identity("i-1", "mac", None, "h"))
    assert a != Identity("i-2", "mac", None, "h")
    assert repr(a) == "Identity(instance_id='i-1', source='mac', mac=None, computer_name='h')"
    with pytest.raises(AttributeError):
        a.source = "x"
