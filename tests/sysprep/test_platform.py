"""The fake platform, path mapping, and the real argv runner (a real process)."""

from __future__ import annotations

import json
import sys

import pytest

from vmprep.errors import InputError, PreflightError
from vmprep.sysprep.platform import (
    FAKE_PLATFORM_FILE,
    NOT_FOUND,
    TIMED_OUT,
    DirectoryPlatform,
    default_platform,
    host_path,
    run_argv,
    windows_path,
)


def test_registry_lookups_ignore_case_and_hive_spelling(tmp_path):
    fake = DirectoryPlatform(tmp_path, registry={"HKLM\\Software\\X": {"Value": 1}})
    assert fake.reg_value("HKEY_LOCAL_MACHINE\\SOFTWARE\\x", "value") == 1
    assert fake.reg_value("HKLM\\SOFTWARE\\X", "other") is None
    assert fake.reg_key_exists("hklm\\software\\x")
    assert not fake.reg_key_exists("HKLM\\SOFTWARE\\Y")


def test_commands_answer_by_match_and_are_recorded(tmp_path):
    fake = DirectoryPlatform(tmp_path, commands=[{"match": "shutdown.exe /s", "stdout": "ok"}])
    assert fake.run(["shutdown.exe", "/s"]).stdout == "ok"
    assert fake.run(["other.exe"]).returncode == NOT_FOUND
    assert fake.calls == [("shutdown.exe", "/s"), ("other.exe",)]


def test_load_reads_the_fake_file_and_rereads_it(tmp_path):
    fake = DirectoryPlatform.load(tmp_path)
    assert not fake.is_windows()  # no file: nothing is claimed
    (tmp_path / FAKE_PLATFORM_FILE).write_text(
        json.dumps({"windows": True, "processes": ["A.EXE"]})
    )
    assert fake.is_windows()
    assert fake.processes() == ["a.exe"]


def test_a_broken_fake_file_is_an_input_error(tmp_path):
    (tmp_path / FAKE_PLATFORM_FILE).write_text("[")
    with pytest.raises(InputError, match=FAKE_PLATFORM_FILE):
        DirectoryPlatform.load(tmp_path)


def test_windows_and_host_paths(tmp_path):
    fake = DirectoryPlatform(tmp_path)
    assert (
        windows_path(fake, "Windows/Panther/unattend.xml") == "C:\\Windows\\Panther\\unattend.xml"
    )
    assert (
        host_path(fake, "c:\\Program Files\\P\\python.exe")
        == tmp_path / "Program Files/P/python.exe"
    )
    assert host_path(fake, "D:\\python.exe") is None
    assert host_path(fake, "python.exe") is None


def test_run_argv_runs_a_real_process_without_a_shell():
    result = run_argv(
        [sys.executable, "-c", "import sys; print(sys.argv[1])", "a b; echo no"], timeout=30
    )
    assert (result.returncode, result.stdout) == (0, "a b; echo no\n")


def test_run_argv_reports_missing_programs_and_timeouts():
    assert run_argv(["/no/such/program"], timeout=5).returncode == NOT_FOUND
    slow = run_argv([sys.executable, "-c", "import time; time.sleep(30)"], timeout=0.2)
    assert slow.returncode == TIMED_OUT


@pytest.mark.skipif(sys.platform == "win32", reason="off Windows only")
def test_without_root_off_windows_preflight_refuses():
    with pytest.raises(PreflightError, match="not Windows"):
        default_platform(None)
