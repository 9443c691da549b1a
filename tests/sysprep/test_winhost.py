"""The parts of the real Windows platform that are plain logic (the rest needs Windows)."""

from __future__ import annotations

from pathlib import PureWindowsPath

import pytest

from vmprep.sysprep.winhost import _split, sysnative


def test_a_32_bit_python_on_64_bit_windows_uses_sysnative(monkeypatch):
    path = PureWindowsPath("C:/Windows/System32/Sysprep/sysprep.exe")
    monkeypatch.delenv("PROCESSOR_ARCHITEW6432", raising=False)
    assert sysnative(path) == path
    monkeypatch.setenv("PROCESSOR_ARCHITEW6432", "AMD64")
    assert str(PureWindowsPath(sysnative(path))) == "C:\\Windows\\Sysnative\\Sysprep\\sysprep.exe"


def test_only_hklm_keys_are_read():
    assert _split("HKLM\\SOFTWARE\\X") == "SOFTWARE\\X"
    assert _split("HKEY_LOCAL_MACHINE\\SYSTEM\\Setup") == "SYSTEM\\Setup"
    with pytest.raises(ValueError, match="only HKLM"):
        _split("HKCU\\Software")
