from __future__ import annotations

import base64
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from tests.render.conftest import (
    ENV,
    GOLDEN,
    SPECS,
    assert_refused_at,
    base_doc,
    check_golden,
    environ_for,
    golden_specs,
    refusal,
    spec_from,
)
from vmprep.render import RenderError, render
from vmprep.render.unattend import AUTOLOGON_FIXUP, encode_password, render_unattend
from vmprep.render.xmlbuild import AnswerFile
from vmprep.spec import load_spec

NS = {"u": "urn:schemas-microsoft-com:unattend"}
WCM = "{http://schemas.microsoft.com/WMIConfig/2002/State}"
GOLDEN_SPECS = golden_specs()
# Which passes each emitted setting is valid in (each component's "Applicable configuration passes",
# https://learn.microsoft.com/en-us/windows-hardware/customize/desktop/unattend/)
VALID = {
    ("Microsoft-Windows-PnpSysprep", "PersistAllDeviceInstalls"): {"generalize"},
    ("Microsoft-Windows-Security-SPP", "SkipRearm"): {"generalize"},
    ("Microsoft-Windows-Shell-Setup", "ComputerName"): {"specialize", "offlineServicing"},
    ("Microsoft-Windows-Shell-Setup", "CopyProfile"): {"specialize"},
    ("Microsoft-Windows-Shell-Setup", "ProductKey"): {"specialize"},
    ("Microsoft-Windows-Shell-Setup", "RegisteredOrganization"): {"specialize", "oobeSystem"},
    ("Microsoft-Windows-Shell-Setup", "RegisteredOwner"): {"specialize", "oobeSystem"},
    ("Microsoft-Windows-Shell-Setup", "TimeZone"): {"specialize", "oobeSystem"},
    ("Microsoft-Windows-Shell-Setup", "AutoLogon"): {"specialize", "oobeSystem"},
    ("Microsoft-Windows-Shell-Setup", "OOBE"): {"oobeSystem"},
    ("Microsoft-Windows-Shell-Setup", "UserAccounts"): {"oobeSystem"},
    ("Microsoft-Windows-Shell-Setup", "FirstLogonCommands"): {"oobeSystem"},
    ("Microsoft-Windows-Security-SPP-UX", "SkipAutoActivation"): {"specialize"},
    ("Microsoft-Windows-TerminalServices-LocalSessionManager", "fDenyTSConnections"): {
        "specialize"
    },
    ("Microsoft-Windows-TerminalServices-RDP-WinStationExtensions", "UserAuthentication"): {
        "specialize"
    },
    ("Networking-MPSSVC-Svc", "FirewallGroups"): {"specialize"},
    ("Microsoft-Windows-International-Core", "InputLocale"): {"specialize", "oobeSystem"},
    ("Microsoft-Windows-International-Core", "SystemLocale"): {"specialize", "oobeSystem"},
    ("Microsoft-Windows-International-Core", "UILanguage"): {"specialize", "oobeSystem"},
    ("Microsoft-Windows-International-Core", "UserLocale"): {"specialize", "oobeSystem"},
}


def unattend_of(spec, environ=None) -> bytes:
    environ = environ_for(spec) if environ is None else environ
    return render(spec, environ=environ).files["Windows/Panther/unattend.xml"]


def parse(data: bytes) -> ET.Element:
    return ET.fromstring(data)


def component(root: ET.Element, pass_name: str, name: str) -> ET.Element:
    found = root.findall(f"u:settings[@pass='{pass_name}']/u:component[@name='{name}']", NS)
    assert len(found) == 1, f"{pass_name}/{name}: {len(found)} components"
    return found[0]


def text(root: ET.Element, pass_name: str, name: str, path: str) -> str | None:
    element = component(root, pass_name, name).find(path, NS)
    assert element is not None, f"{pass_name}/{name}/{path} missing"
    return element.text


@pytest.mark.parametrize("spec_path", GOLDEN_SPECS, ids=lambda p: p.stem)
def test_unattend_matches_golden(spec_path: Path) -> None:
    check_golden(unattend_of(load_spec(spec_path)), GOLDEN / f"{spec_path.stem}.unattend.xml")


@pytest.mark.parametrize("spec_path", GOLDEN_SPECS, ids=lambda p: p.stem)
def test_every_setting_is_in_a_pass_the_reference_allows(spec_path: Path) -> None:
    spec = load_spec(spec_path)
    arch = spec.image["architecture"]
    root = parse(unattend_of(spec))
    assert root.tag == "{urn:schemas-microsoft-com:unattend}unattend"
    passes = [s.get("pass") for s in root.findall("u:settings", NS)]
    assert passes == ["generalize", "specialize", "oobeSystem"]
    for settings in root.findall("u:settings", NS):
        names = [c.get("name") for c in settings.findall("u:component", NS)]
        assert len(names) == len(set(names)), "a component appears twice in one pass"
        for comp in settings.findall("u:component", NS):
            assert comp.attrib == {
                "name": comp.get("name"),
                "processorArchitecture": arch,
                "publicKeyToken": "31bf3856ad364e35",
                "language": "neutral",
                "versionScope": "nonSxS",
            }
            for setting in comp:
                key = (comp.attrib["name"], setting.tag.split("}")[1])
                assert settings.get("pass") in VALID[key], key


def test_full_spec_settings_land_in_their_components() -> None:
    root = parse(unattend_of(load_spec(SPECS / "full.yaml")))
    shell = "Microsoft-Windows-Shell-Setup"
    assert (
        text(root, "generalize", "Microsoft-Windows-PnpSysprep", "u:PersistAllDeviceInstalls")
        == "true"
    )
    assert text(root, "generalize", "Microsoft-Windows-Security-SPP", "u:SkipRearm") == "1"
    assert text(root, "specialize", shell, "u:ComputerName") == "*"
    assert text(root, "specialize", shell, "u:RegisteredOrganization") == "Contoso & Partners <Web>"
    assert text(root, "specialize", shell, "u:ProductKey") == "VDYBN-27WPP-V4HQT-9VMD4-VMK7H"
    assert text(root, "oobeSystem", shell, "u:TimeZone") == "W. Europe Standard Time"
    lsm = "Microsoft-Windows-TerminalServices-LocalSessionManager"
    assert text(root, "specialize", lsm, "u:fDenyTSConnections") == "false"
    intl = "Microsoft-Windows-International-Core"
    assert text(root, "oobeSystem", intl, "u:SystemLocale") == "de-DE"
    assert text(root, "oobeSystem", intl, "u:UserLocale") == "en-US"  # defaults to ui
    assert text(root, "oobeSystem", intl, "u:InputLocale") == "0407:00000407"
    groups = component(root, "specialize", "Networking-MPSSVC-Svc").findall(
        "u:FirewallGroups/u:FirewallGroup", NS
    )
    assert [
        (g.findtext("u:Group", None, NS), g.findtext("u:Active", None, NS)) for g in groups
    ] == [
        ("@FirewallAPI.dll,-28752", "true"),
        ("@FirewallAPI.dll,-30267", "true"),
        ("@FirewallAPI.dll,-28502", "false"),
        ("@FirewallAPI.dll,-34251", "true"),
    ]
    assert all(g.get(f"{WCM}action") == "add" for g in groups)
    keys = [g.get(f"{WCM}keyValue") for g in groups]
    assert len(set(keys)) == len(keys)


def test_passwords_use_the_documented_encoding() -> None:
    # Microsoft's own example value decodes to "pw" + "AdministratorPassword"
    example = "cAB3AEEAZABtAGkAbgBpAHMAdAByAGEAdABvAHIAUABhAHMAcwB3AG8AcgBkAA=="
    assert encode_password("pw", "AdministratorPassword") == example
    root = parse(unattend_of(load_spec(SPECS / "full.yaml")))
    accounts = component(root, "oobeSystem", "Microsoft-Windows-Shell-Setup").find(
        "u:UserAccounts", NS
    )
    assert accounts is not None
    admin = accounts.find("u:AdministratorPassword", NS)
    assert admin is not None
    encoded = admin.findtext("u:Value", None, NS)
    assert encoded is not None
    decoded = base64.b64decode(encoded).decode("utf-16-le")
    assert decoded == ENV["VMPREP_TEST_ADMIN"] + "AdministratorPassword"
    assert admin.findtext("u:PlainText", None, NS) == "false"
    deploy = accounts.find("u:LocalAccounts/u:LocalAccount", NS)
    assert deploy is not None
    value = deploy.findtext("u:Password/u:Value", None, NS)
    assert value is not None
    assert (
        base64.b64decode(value).decode("utf-16-le") == "deploy-pwPassword"
    )  # file, newline dropped
    assert deploy.findtext("u:Group", None, NS) == "Administrators;Remote Desktop Users"
    assert deploy.get(f"{WCM}action") == "add"
    assert ENV["VMPREP_TEST_ADMIN"].encode() not in unattend_of(load_spec(SPECS / "full.yaml"))


def test_one_automatic_logon_adds_the_logon_count_fixup_first() -> None:
    root = parse(unattend_of(load_spec(SPECS / "full.yaml")))
    shell = component(root, "oobeSystem", "Microsoft-Windows-Shell-Setup")
    assert shell.findtext("u:AutoLogon/u:LogonCount", None, NS) == "1"
    assert shell.findtext("u:AutoLogon/u:Username", None, NS) == "deploy"
    commands = shell.findall("u:FirstLogonCommands/u:SynchronousCommand", NS)
    assert [c.findtext("u:Order", None, NS) for c in commands] == ["1", "2"]
    assert commands[0].findtext("u:CommandLine", None, NS) == AUTOLOGON_FIXUP
    assert commands[1].findtext("u:CommandLine", None, NS) == "cmd /c echo first logon"


def test_several_automatic_logons_compensate_for_the_extra_one(tmp_path: Path) -> None:
    spec = spec_from(tmp_path, base_doc(auto_logon={"user": "Administrator", "count": 3}))
    shell = component(parse(unattend_of(spec)), "oobeSystem", "Microsoft-Windows-Shell-Setup")
    assert shell.findtext("u:AutoLogon/u:LogonCount", None, NS) == "2"
    assert shell.find("u:FirstLogonCommands", NS) is None
    value = shell.findtext("u:AutoLogon/u:Password/u:Value", None, NS)
    assert value is not None
    assert base64.b64decode(value).decode("utf-16-le") == ENV["VMPREP_TEST_ADMIN"] + "Password"


def test_automatic_logon_without_a_known_password_is_an_error(tmp_path: Path) -> None:
    # validate refuses it already (auto-logon); render keeps its own check for direct callers
    problems = refusal(tmp_path, base_doc(auto_logon={"user": "nobody"}))
    assert [p.code for p in problems] == ["auto-logon"]
    assert "automatic logon as 'nobody'" in problems[0].message


def test_rdp_off_denies_connections_and_skips_nla(tmp_path: Path) -> None:
    root = parse(unattend_of(spec_from(tmp_path, base_doc())))
    lsm = "Microsoft-Windows-TerminalServices-LocalSessionManager"
    assert text(root, "specialize", lsm, "u:fDenyTSConnections") == "true"
    rdp = "Microsoft-Windows-TerminalServices-RDP-WinStationExtensions"
    assert not root.findall(f"u:settings/u:component[@name='{rdp}']", NS)
    assert not root.findall("u:settings/u:component[@name='Networking-MPSSVC-Svc']", NS)


@pytest.mark.parametrize("arch", ["amd64", "arm64", "x86"])
def test_components_carry_the_image_architecture(tmp_path: Path, arch: str) -> None:
    doc = base_doc()
    doc["image"].update(os="windows-10", architecture=arch)
    doc["setup"]["auto_logon"] = {"user": "Administrator"}  # client-admin-account
    root = parse(unattend_of(spec_from(tmp_path, doc)))
    assert {
        c.get("processorArchitecture")
        for c in root.iter("{urn:schemas-microsoft-com:unattend}component")
    } == {arch}


def test_firewall_group_names_match_case_insensitively(tmp_path: Path) -> None:
    spec = spec_from(tmp_path, base_doc(firewall_groups={"remote desktop": True}))
    root = parse(unattend_of(spec))
    svc = component(root, "specialize", "Networking-MPSSVC-Svc")
    assert (
        svc.findtext("u:FirewallGroups/u:FirewallGroup/u:Group", None, NS)
        == "@FirewallAPI.dll,-28752"
    )


def test_unknown_firewall_group_is_an_error_at_its_line(tmp_path: Path) -> None:
    doc = base_doc(firewall_groups={"Remote Desktop": True, "My App": True})
    (problem,) = refusal(tmp_path, doc)  # validate refuses it, from the table render uses
    assert problem.code == "firewall-group"
    assert problem.message == "unknown firewall group 'My App'"
    assert problem.hint is not None
    assert problem.hint.startswith("use one of Core Networking")
    lines = (tmp_path / "refused.yaml").read_text(encoding="utf-8").splitlines()
    assert lines[problem.line - 1].strip() == "My App: true"


def test_render_refuses_an_unknown_group_itself(tmp_path: Path) -> None:
    spec = spec_from(tmp_path, base_doc(firewall_groups={"Remote Desktop": True}))
    spec.setup["firewall_groups"]["My App"] = True  # past validate: render does not trust it
    with pytest.raises(RenderError) as caught:
        unattend_of(spec)
    (problem,) = caught.value.problems
    assert problem.code == "firewall-group"
    assert problem.message.startswith("unknown firewall group 'My App': use one of Core Networking")


def test_the_same_firewall_group_twice_is_an_error(tmp_path: Path) -> None:
    groups = {"Remote Desktop": True, "@FirewallAPI.dll,-28752": False}
    (problem,) = refusal(tmp_path, base_doc(firewall_groups=groups))
    assert problem.code == "firewall-group"
    assert problem.message.endswith("is the same group as 'Remote Desktop'")


def test_account_group_with_a_semicolon_is_an_error(tmp_path: Path) -> None:
    accounts = [{"name": "a", "groups": ["Users;Administrators"]}]
    problems = refusal(tmp_path, base_doc(accounts=accounts))  # validate: account-group
    assert [p.code for p in problems] == ["account-group"]
    assert "contains ';'" in problems[0].message


def test_boot_time_secret_cannot_be_an_unattend_password(tmp_path: Path) -> None:
    doc = base_doc()
    doc["setup"]["administrator"]["password"] = {"secret": "admin"}
    assert_refused_at(tmp_path, doc, "password")


@pytest.mark.parametrize("value", ["a\x01b", "\ud800", "\ufffe", "\x00"])
def test_text_xml_cannot_carry_is_refused_at_its_line(tmp_path: Path, value: str) -> None:
    doc = base_doc(organization=value)
    assert_refused_at(tmp_path, doc, "organization")


def test_render_checks_xml_text_itself(tmp_path: Path) -> None:
    spec = spec_from(tmp_path, base_doc())
    xml = AnswerFile(spec, "amd64")
    xml.value(xml.component("specialize", "X"), "Y", "a\x01\ud800", ("setup", "organization"))
    (problem,) = xml.problems
    assert problem.code == "xml-text"
    assert problem.message == "the value contains U+0001, which XML 1.0 cannot carry"


def test_carriage_returns_round_trip_as_character_references(tmp_path: Path) -> None:
    # A description is the one setup text that may span lines (control-character).
    account = {"name": "u", "description": "a\r\nb\rc"}
    spec = spec_from(tmp_path, base_doc(accounts=[account]))
    data, _ = render_unattend(spec, lambda path: "")
    assert b"a&#13;\nb&#13;c" in data
    assert "a\r\nb\rc" in [e.text for e in parse(data).iter()]
