"""The Panther log parser on lines in Sysprep's documented format."""

from __future__ import annotations

from pathlib import Path

from vmprep.sysprep.panther import PANTHER, diagnose, find_causes, log_sizes, parse_log

APPX = (
    "2023-06-07 10:15:32, Error                 SYSPRP Package "
    "NotepadPlusPlus_1.0.0.0_neutral__7njy0v32s6xk6 was installed for a user, but not "
    "provisioned for all users. This package will not function properly in the sysprep image."
)
APPX_DLL = (
    "2023-06-07 10:15:32, Error      [0x0f0082] SYSPRP ActionPlatform::LaunchModule: Failure "
    "occurred while executing 'SysprepGeneralizeValidate' from "
    "C:\\Windows\\System32\\AppxSysprep.dll; dwRet = 0x3cf2"
)
BITLOCKER = (
    "2021-02-01 08:00:00, Error      [0x0f0082] SYSPRP BitLocker-Sysprep: BitLocker is on for "
    "the OS volume. Turn BitLocker off to run Sysprep. (0x80310039)"
)
CBS = (
    "2018-09-15 18:08:32, Error      [0x0f00b0] SYSPRP spopk.dll:: Failed to query pending CBS "
    "operations; hr = 0x80080005"
)
CBS_DLL = (
    "2018-09-15 18:08:32, Error      [0x0f0082] SYSPRP ActionPlatform::LaunchModule: Failure "
    "occurred while executing 'Sysprep_Clean_Validate_Opk' from C:\\Windows\\System32\\spopk.dll; "
    "dwRet = 0x5"
)
VMAGENT = (
    "2020-10-22 00:00:00, Error      [0x0f0085] SYSPRP LaunchDll:Could not load DLL "
    "C:\\windows\\system32\\VMAgentDisabler.dll[gle=0x0000007e]"
)
DSC = (
    "2019-12-02 14:39:42, Error      [0x0f0082] SYSPRP LaunchDll:Failure occurred while "
    "executing 'DscCore.dll,SysPrep_Cleanup', returned error code 0x2"
)
INFO = (
    "2018-09-15 18:04:30, Info       [0x0f0080] SYSPRP ActionPlatform::LaunchModule: Found "
    "'Sysprep_Clean_Validate_Opk' in C:\\Windows\\System32\\spopk.dll; executing it"
)


def test_a_line_splits_into_time_level_code_component_message():
    (line,) = parse_log(CBS, "setuperr.log")
    assert (line.time, line.level, line.code, line.component) == (
        "2018-09-15 18:08:32",
        "Error",
        "0x0f00b0",
        "SYSPRP",
    )
    assert line.message == "spopk.dll:: Failed to query pending CBS operations; hr = 0x80080005"
    assert (line.file, line.number) == ("setuperr.log", 1)


def test_a_line_without_a_code_and_other_noise():
    lines = parse_log(f"garbage\r\n{APPX}\r\n   \r\n{INFO}\r\n")
    assert [(line.number, line.level, line.code) for line in lines] == [
        (2, "Error", None),
        (4, "Info", "0x0f0080"),
    ]


def test_appx_names_the_packages_and_explains_its_dll():
    causes = find_causes(parse_log(f"{INFO}\n{APPX}\n{APPX_DLL}"))
    assert [c.id for c in causes] == ["appx"]  # AppxSysprep.dll is the same failure
    assert "NotepadPlusPlus_1.0.0.0_neutral__7njy0v32s6xk6" in causes[0].summary
    assert "--fix-appx" in causes[0].hint


def test_bitlocker():
    (cause,) = find_causes(parse_log(BITLOCKER))
    assert cause.id == "bitlocker"
    assert "manage-bde -off" in cause.hint


def test_pending_servicing_explains_spopk():
    (cause,) = find_causes(parse_log(f"{INFO}\n{CBS}\n{CBS_DLL}"))
    assert cause.id == "pending"
    assert cause.evidence == (parse_log(CBS)[0].__str__(),)


def test_the_azure_agent_provider_gets_its_own_hint():
    (cause,) = find_causes(parse_log(VMAGENT))
    assert (cause.id, cause.summary) == (
        "provider",
        "external sysprep provider VMAgentDisabler.dll failed",
    )
    assert "WindowsAzureGuestAgent" in cause.hint


def test_any_other_failing_provider_is_named():
    (cause,) = find_causes(parse_log(DSC))
    assert cause.summary == "external sysprep provider DscCore.dll failed"
    assert "SysPrepExternal" in cause.hint


def test_info_lines_alone_explain_nothing():
    assert find_causes(parse_log(INFO)) == []


def _write(root: Path, name: str, text: str, mode: str = "w") -> None:
    path = root / PANTHER / name
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open(mode, encoding="utf-8", newline="\r\n") as f:
        f.write(text + "\n")


def test_diagnose_reads_only_what_this_run_wrote(tmp_path):
    _write(tmp_path, "setupact.log", BITLOCKER)  # an older run
    _write(tmp_path, "setuperr.log", BITLOCKER)
    offsets = log_sizes(tmp_path)
    _write(tmp_path, "setupact.log", f"{INFO}\n{APPX}\n{APPX_DLL}", "a")
    _write(tmp_path, "setuperr.log", f"{APPX}\n{APPX_DLL}", "a")
    diagnosis = diagnose(tmp_path, offsets)
    assert [c.id for c in diagnosis.causes] == ["appx"]
    assert [line.message[:40] for line in diagnosis.lines] == [
        parse_log(APPX)[0].message[:40],
        parse_log(APPX_DLL)[0].message[:40],
    ]
    assert [p.name for p in diagnosis.logs] == ["setuperr.log", "setupact.log"]


def test_diagnose_falls_back_to_setupact_errors_and_reads_utf16(tmp_path):
    path = tmp_path / PANTHER / "setupact.log"
    path.parent.mkdir(parents=True)
    path.write_bytes(f"{INFO}\r\n{VMAGENT}".encode("utf-16"))
    diagnosis = diagnose(tmp_path)
    assert [line.code for line in diagnosis.lines] == ["0x0f0085"]
    assert diagnosis.causes[0].id == "provider"


def test_diagnose_without_logs(tmp_path):
    diagnosis = diagnose(tmp_path)
    assert (diagnosis.lines, diagnosis.causes, diagnosis.logs) == ((), (), ())


def test_a_pending_operations_info_line_is_still_read(tmp_path):
    info = f"{INFO[:19]}, Info                  SYSPRP WinMain: File operations pending"
    _write(tmp_path, "setupact.log", f"{INFO}\n{info}\n{INFO}")
    assert [c.id for c in diagnose(tmp_path).causes] == ["pending"]
