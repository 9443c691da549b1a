"""The PowerShell probe: its exact argv, and parsing what it prints."""

from __future__ import annotations

from typing import Any

import pytest

from vmprep.sysprep.platform import CommandResult
from vmprep.sysprep.probes import (
    FACTS_SCRIPT,
    AppxPackage,
    ProbeError,
    facts_argv,
    parse_appx,
    parse_bitlocker,
    parse_domain,
    parse_facts,
    parse_rearm,
    parse_services,
    remove_appx_argv,
)

POWERSHELL = [
    "powershell.exe",
    "-NoLogo",
    "-NoProfile",
    "-NonInteractive",
    "-ExecutionPolicy",
    "Bypass",
    "-Command",
]

# What ConvertTo-Json -Compress prints on a VM with one per-user package (one line).
ANSWER = (
    '{"appx":[{"name":"Contoso.Notes","full_name":"Contoso.Notes_1.2.3.0_x64__abcdefghjk1mn",'
    '"users":["REF\\\\builder"]}],"bitlocker":{"protection_status":0,"present":true,'
    '"conversion_status":1,"percent":100},"rearm":{"remaining":1001},'
    '"domain":{"part_of_domain":false,"domain":"WORKGROUP"},'
    '"services":[{"name":"RdAgent","status":"Running"},'
    '{"name":"WindowsAzureGuestAgent","status":"Stopped"}]}'
)


def facts(stdout: str = ANSWER, returncode: int = 0) -> dict[str, Any]:
    return parse_facts(CommandResult(tuple(facts_argv()), returncode, stdout))


def test_the_facts_argv_is_one_fixed_powershell_script():
    assert facts_argv() == [*POWERSHELL, FACTS_SCRIPT]
    for needle in (
        "Get-AppxPackage -AllUsers",
        "Get-AppxProvisionedPackage -Online",
        "Win32_EncryptableVolume",
        "GetConversionStatus",
        "RemainingWindowsReArmCount",
        "Win32_ComputerSystem",
        "Get-Service -Name RdAgent,WindowsAzureGuestAgent",
        "ConvertTo-Json",
    ):
        assert needle in FACTS_SCRIPT


def test_every_section_parses():
    answer = facts()
    assert parse_appx(answer) == [
        AppxPackage("Contoso.Notes", "Contoso.Notes_1.2.3.0_x64__abcdefghjk1mn", ("REF\\builder",))
    ]
    volume = parse_bitlocker(answer)
    assert volume.present
    assert not volume.decrypted
    assert parse_rearm(answer) == 1001
    assert parse_domain(answer) is None
    assert parse_services(answer) == {"RdAgent": "Running", "WindowsAzureGuestAgent": "Stopped"}


def test_a_one_element_array_unwrapped_by_convertto_json_is_accepted():
    answer = facts(
        '{"appx":{"name":"A","full_name":"A_1_x64__p","users":"U"},'
        '"services":{"name":"RdAgent","status":"Running"}}'
    )
    assert parse_appx(answer) == [AppxPackage("A", "A_1_x64__p", ("U",))]
    assert parse_services(answer) == {"RdAgent": "Running"}


def test_a_domain_member_reports_its_domain():
    answer = facts('{"domain":{"part_of_domain":true,"domain":"corp.example.com"}}')
    assert parse_domain(answer) == "corp.example.com"


def test_a_section_error_is_a_probe_error_naming_it():
    answer = facts('{"appx":{"error":"Get-AppxPackage : Access is denied"}}')
    with pytest.raises(ProbeError, match="appx: Get-AppxPackage : Access is denied"):
        parse_appx(answer)
    with pytest.raises(ProbeError, match="no 'rearm'"):
        parse_rearm(answer)


@pytest.mark.parametrize(
    ("stdout", "returncode", "message"),
    [
        ("", 127, "exited with 127"),
        ("WARNING: something\n{", 0, "not JSON"),
        ("[1, 2]", 0, "not print a JSON object"),
    ],
)
def test_broken_answers_are_probe_errors(stdout, returncode, message):
    with pytest.raises(ProbeError, match=message):
        facts(stdout, returncode)


def test_unexpected_section_shapes_are_probe_errors():
    with pytest.raises(ProbeError):
        parse_bitlocker(facts('{"bitlocker":{"present":true}}'))
    with pytest.raises(ProbeError):
        parse_rearm(facts('{"rearm":{"remaining":"many"}}'))
    with pytest.raises(ProbeError):
        parse_appx(facts('{"appx":[{"name":"no full name"}]}'))


def test_remove_appx_argv_quotes_each_package():
    packages = [AppxPackage("A", "A_1.0.0.0_x64__abc", ()), AppxPackage("B", "B_2_neutral_~_x", ())]
    argv = remove_appx_argv(packages)
    assert argv[:-1] == POWERSHELL
    assert argv[-1].split("; ") == [
        "$ErrorActionPreference = 'Stop'",
        "Remove-AppxPackage -AllUsers -Package 'A_1.0.0.0_x64__abc'",
        "Remove-AppxPackage -AllUsers -Package 'B_2_neutral_~_x'",
    ]


@pytest.mark.parametrize("name", ["a'; Remove-Item C:\\ -Recurse; '", "x y", "$(evil)", ""])
def test_remove_appx_argv_refuses_names_that_are_not_package_names(name):
    with pytest.raises(ProbeError, match="refusing"):
        remove_appx_argv([AppxPackage("x", name, ())])
