from __future__ import annotations

import json
import stat
import sys
from pathlib import Path

import pytest

from vmprep.spec import load_spec
from vmprep.sysprep.generalize import Overlay, Request
from vmprep.sysprep.platform import FAKE_PLATFORM_FILE, DirectoryPlatform

HERE = Path(__file__).resolve().parent
PYTHON = "C:\\Program Files\\Python312\\python.exe"

SPEC = """\
version: 1
image:
  name: test-image
setup:
  timezone: UTC
  administrator: {password: {env: VMPREP_ADMIN_PASSWORD}}
sysprep:
  shutdown: shutdown
agent:
  runtime: {python: 'C:\\Program Files\\Python312\\python.exe'}
"""


def clean_facts() -> dict:
    """What the PowerShell probe prints on a clean reference VM."""
    return {
        "appx": [],
        "bitlocker": {"present": False},
        "rearm": {"remaining": 1000},
        "domain": {"part_of_domain": False, "domain": "WORKGROUP"},
        "services": [],
        "dhcp": [{"adapter": "Microsoft Hyper-V Network Adapter", "dhcp": True}],
    }


def clean_platform_data(facts: dict | None = None) -> dict:
    return {
        "windows": True,
        "admin": True,
        "registry": {},
        "processes": ["System", "explorer.exe"],
        "commands": [
            {"match": "Get-AppxPackage", "stdout": json.dumps(facts or clean_facts())},
            {"match": "Remove-AppxPackage", "stdout": ""},
            {"match": "shutdown.exe", "stdout": ""},
            {"match": "sys.version_info", "stdout": "3.12.8"},  # the agent's interpreter
        ],
        "interpreter": PYTHON,
    }


def install_fake_sysprep(root: Path) -> Path:
    exe = root / "Windows/System32/Sysprep/sysprep.exe"
    exe.parent.mkdir(parents=True, exist_ok=True)
    body = (HERE / "fake_sysprep.py").read_text()
    exe.write_text(f"#!{sys.executable}\n{body}")
    exe.chmod(exe.stat().st_mode | stat.S_IXUSR)
    return exe


@pytest.fixture
def drive(tmp_path: Path) -> Path:
    """A clean fake system drive: State.ini COMPLETE, Python installed, fake sysprep.exe."""
    root = tmp_path / "C"
    (root / "Windows/Setup/State").mkdir(parents=True)
    (root / "Windows/Setup/State/State.ini").write_text(
        "[State]\r\nImageState=IMAGE_STATE_COMPLETE\r\n"
    )
    (root / "Windows/Panther").mkdir(parents=True)
    python = root / "Program Files/Python312/python.exe"
    python.parent.mkdir(parents=True)
    python.write_bytes(b"MZ")
    install_fake_sysprep(root)
    (root / FAKE_PLATFORM_FILE).write_text(json.dumps(clean_platform_data()))
    return root


@pytest.fixture
def platform(drive: Path) -> DirectoryPlatform:
    return DirectoryPlatform.load(drive)


def set_platform(root: Path, **changes) -> None:
    path = root / FAKE_PLATFORM_FILE
    data = json.loads(path.read_text())
    data.update(changes)
    path.write_text(json.dumps(data))


def set_facts(root: Path, **sections) -> None:
    facts = clean_facts()
    facts.update(sections)
    set_platform(root, commands=clean_platform_data(facts)["commands"])


@pytest.fixture
def spec_file(tmp_path: Path) -> Path:
    path = tmp_path / "spec.yaml"
    path.write_text(SPEC)
    return path


@pytest.fixture
def spec(spec_file: Path):
    return load_spec(spec_file)


def hand_overlay(spec, python, chain) -> Overlay:
    """A hand-made overlay in render's shape (docs/internals.md), recording its arguments."""
    setupcomplete = b"@echo off\r\n"
    if chain:
        setupcomplete += f'call "{chain}"\r\n'.encode()
    python = python or spec.agent["runtime"]["python"]
    setupcomplete += f'"{python}" "C:\\ProgramData\\vmprep\\agent.pyz" run\r\n'.encode()
    files = {
        "Windows/Panther/unattend.xml": b'<?xml version="1.0" encoding="utf-8"?>\n<unattend/>\n',
        "Windows/Setup/Scripts/SetupComplete.cmd": setupcomplete,
        "ProgramData/vmprep/agent.pyz": b"PK\x05\x06" + b"\0" * 18,
        "ProgramData/vmprep/agent.json": b'{"format": 1}\n',
    }
    targets = {rel: "C:\\" + rel.replace("/", "\\") for rel in files}
    return Overlay(files, targets)


@pytest.fixture
def request_for(spec, platform):
    def make(**changes) -> Request:
        values = {
            "spec": spec,
            "platform": platform,
            "sysprep_exe": platform.root / "Windows/System32/Sysprep/sysprep.exe",
            "renderer": hand_overlay,
            "timeout": 10.0,
            "poll_interval": 0.01,
            "settle": 0.5,
        }
        values.update(changes)
        return Request(**values)

    return make


def scenario(root: Path, name: str) -> None:
    (root / "fake-sysprep-scenario").write_text(name)
