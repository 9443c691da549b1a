"""Every preflight check, passing and failing, on a fake system drive."""

from __future__ import annotations

import json

import pytest

from tests.sysprep.conftest import PYTHON, clean_platform_data, set_facts, set_platform
from vmprep.spec.platforms import PLATFORMS
from vmprep.sysprep.checks import CBS, CHAINED_SETUPCOMPLETE, VERSION_PROBE
from vmprep.sysprep.generalize import context
from vmprep.sysprep.platform import DirectoryPlatform
from vmprep.sysprep.preflight import Status, check_ids, run_check, run_preflight


@pytest.fixture
def run(request_for, drive):
    def run_one(id: str, **changes):
        changes.setdefault("platform", DirectoryPlatform.load(drive))  # reads the drive afresh
        return run_check(id, context(request_for(**changes)))

    return run_one


def test_a_clean_reference_vm_passes_every_check(request_for):
    results = run_preflight(context(request_for()))
    assert [r.id for r in results] == check_ids(PLATFORMS["generic"])
    assert not {"azure-agents", "ec2launch", "gce-agents"} & {r.id for r in results}
    assert {r.id: r.status for r in results if r.status is not Status.PASS} == {}


def test_skipped_checks_are_reported_as_skipped_not_run(request_for, drive):
    set_platform(drive, admin=False)
    results = {r.id: r for r in run_preflight(context(request_for()), skip=["admin"])}
    assert results["admin"].status is Status.SKIP
    assert "SKIPPED" in results["admin"].reason


def test_an_unknown_skip_id_is_a_usage_error(request_for):
    from vmprep.errors import UsageError

    with pytest.raises(UsageError, match="no-such-check"):
        run_preflight(context(request_for()), skip=["no-such-check"])


def test_windows_fails_off_windows(run, drive):
    assert run("windows").status is Status.PASS
    set_platform(drive, windows=False)
    assert run("windows").status is Status.FAIL


def test_admin_fails_when_not_elevated(run, drive):
    assert run("admin").status is Status.PASS
    set_platform(drive, admin=False)
    result = run("admin")
    assert result.status is Status.FAIL
    assert "administrator" in result.hint


def test_sysprep_exe_fails_when_missing(run, drive):
    assert run("sysprep-exe").status is Status.PASS
    result = run("sysprep-exe", sysprep_exe=drive / "nope.exe")
    assert result.status is Status.FAIL
    assert "nope.exe" in result.reason


def test_sysprep_exe_through_sysnative_fails(run, drive):
    """A 32-bit Python would write System32\\Sysprep\\unattend.xml into SysWOW64."""
    exe = drive / "Windows/Sysnative/Sysprep/sysprep.exe"
    exe.parent.mkdir(parents=True)
    exe.write_bytes(b"MZ")
    result = run("sysprep-exe", sysprep_exe=exe)
    assert result.status is Status.FAIL
    assert "32-bit Python" in result.reason
    assert "64-bit" in (result.hint or "")


def test_sysprep_running_fails_when_another_runs(run, drive):
    assert run("sysprep-running").status is Status.PASS
    set_platform(drive, processes=["explorer.exe", "Sysprep.exe"])
    assert run("sysprep-running").status is Status.FAIL


@pytest.mark.parametrize(
    "state", ["IMAGE_STATE_UNDEPLOYABLE", "IMAGE_STATE_GENERALIZE_RESEAL_TO_OOBE"]
)
def test_image_state_fails_unless_complete(run, drive, state):
    assert run("image-state").status is Status.PASS
    (drive / "Windows/Setup/State/State.ini").write_text(f"[State]\nImageState={state}\n")
    result = run("image-state")
    assert result.status is Status.FAIL
    assert state in result.reason


def test_image_state_fails_when_unreadable(run, drive):
    (drive / "Windows/Setup/State/State.ini").unlink()
    assert "unreadable" in run("image-state").reason


@pytest.mark.parametrize(
    ("key", "values", "label"),
    [
        (CBS + "\\RebootPending", {}, "RebootPending"),
        (CBS + "\\PackagesPending", {}, "PackagesPending"),
        (
            (
                "HKLM\\SOFTWARE\\Microsoft\\Windows\\CurrentVersion\\WindowsUpdate\\Auto Update"
                "\\RebootRequired"
            ),
            {},
            "RebootRequired",
        ),
        (
            "HKLM\\SYSTEM\\CurrentControlSet\\Control\\Session Manager",
            {"PendingFileRenameOperations": ["\\??\\C:\\x.tmp", ""]},
            "PendingFileRenameOperations",
        ),
    ],
)
def test_pending_reboot_fails_on_each_marker(run, drive, key, values, label):
    set_platform(
        drive,
        registry={"HKLM\\SYSTEM\\CurrentControlSet\\Control\\Session Manager": {"X": 1}},
    )
    assert run("pending-reboot").status is Status.PASS
    set_platform(drive, registry={key: values})
    result = run("pending-reboot")
    assert result.status is Status.FAIL
    assert label in result.reason


def test_pending_reboot_ignores_an_empty_rename_list(run, drive):
    set_platform(
        drive,
        registry={
            "HKLM\\SYSTEM\\CurrentControlSet\\Control\\Session Manager": {
                "PendingFileRenameOperations": [""]
            }
        },
    )
    assert run("pending-reboot").status is Status.PASS


@pytest.mark.parametrize("process", ["TiWorker.exe", "TrustedInstaller.exe"])
def test_servicing_fails_while_servicing_runs(run, drive, process):
    assert run("servicing").status is Status.PASS
    set_platform(drive, processes=["explorer.exe", process])
    assert process.lower() in run("servicing").reason


def test_appx_fails_and_lists_per_user_packages(run, drive):
    assert run("appx").status is Status.PASS
    set_facts(
        drive,
        appx=[
            {
                "name": "Contoso.Notes",
                "full_name": "Contoso.Notes_1.0.0.0_x64__abc",
                "users": ["VM\\dev"],
            }
        ],
    )
    result = run("appx")
    assert result.status is Status.FAIL
    assert result.details == ("Contoso.Notes_1.0.0.0_x64__abc (users: VM\\dev)",)
    assert "--fix-appx" in result.hint


def test_bitlocker_fails_when_the_os_volume_is_encrypted(run, drive):
    set_facts(
        drive,
        bitlocker={"present": True, "conversion_status": 0, "percent": 0, "protection_status": 0},
    )
    assert run("bitlocker").status is Status.PASS
    # Fully encrypted with protection off still blocks sysprep (reference §9).
    set_facts(
        drive,
        bitlocker={"present": True, "conversion_status": 1, "percent": 100, "protection_status": 0},
    )
    result = run("bitlocker")
    assert result.status is Status.FAIL
    assert "manage-bde -off C:" in result.hint


def test_rearm_only_matters_when_skip_rearm_is_false(run, drive, spec):
    set_facts(drive, rearm={"remaining": 0})
    spec.data["sysprep"]["skip_rearm"] = True
    assert run("rearm").status is Status.PASS
    spec.data["sysprep"]["skip_rearm"] = False  # the default since SkipRearm=1 is off
    result = run("rearm")
    assert result.status is Status.FAIL
    assert "RemainingWindowsReArmCount" in result.reason
    set_facts(drive, rearm={"remaining": 2})
    assert run("rearm").status is Status.PASS


def test_cloud_agents_fail_when_present_but_stopped(run, drive):
    set_facts(drive, services=[{"name": "RdAgent", "status": "Running"}])
    assert run("cloud-agents").status is Status.PASS
    set_facts(
        drive,
        services=[
            {"name": "RdAgent", "status": "Running"},
            {"name": "WindowsAzureGuestAgent", "status": "Stopped"},
        ],
    )
    result = run("cloud-agents")
    assert result.status is Status.FAIL
    assert "WindowsAzureGuestAgent (Stopped)" in result.reason


def test_python_fails_when_missing(run, drive):
    assert run("python").status is Status.PASS
    (drive / "Program Files/Python312/python.exe").unlink()
    assert "does not exist" in run("python").reason


def test_python_fails_under_a_user_profile(run, drive, spec):
    exe = drive / "Users/dev/AppData/Local/Programs/Python/python.exe"
    exe.parent.mkdir(parents=True)
    exe.write_bytes(b"MZ")
    spec.data["agent"]["runtime"]["python"] = (
        "C:\\Users\\dev\\AppData\\Local\\Programs\\Python\\python.exe"
    )
    result = run("python")
    assert result.status is Status.FAIL
    assert "user profile" in result.reason


def test_python_fails_on_another_drive(run, spec):
    spec.data["agent"]["runtime"]["python"] = "D:\\Python\\python.exe"
    assert "not on the system drive" in run("python").reason


def test_python_defaults_to_the_running_interpreter(run, drive, spec):
    del spec.data["agent"]["runtime"]["python"]
    assert run("python").status is Status.PASS  # the fake's interpreter exists
    set_platform(drive, interpreter=None)
    assert run("python").status is Status.FAIL


@pytest.mark.parametrize(
    "leftover",
    [
        "Windows/Panther/unattend.xml",  # Setup's cache: ours never goes there
        "Windows/Panther/Unattend.xml",
        "Windows/Panther/unattend-original.xml",
        "Windows/Panther/Unattend/Unattend.xml",
        "Autounattend.xml",
    ],
)
def test_answer_files_fail_on_leftovers(run, drive, leftover):
    assert run("answer-files").status is Status.PASS
    path = drive / leftover
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("<unattend/>")
    result = run("answer-files")
    assert result.status is Status.FAIL
    assert result.details == (leftover,)
    assert leftover in (result.hint or "")


def test_an_answer_file_where_ours_goes_is_a_warning(run, drive):
    ours = drive / "Windows/System32/Sysprep/unattend.xml"
    ours.write_text("<unattend/>")
    result = run("answer-files")
    assert result.status is Status.WARN
    assert result.details == ("Windows/System32/Sysprep/unattend.xml",)
    assert "replaced by ours" in result.reason
    assert "a failed run puts the old one back" in (result.hint or "")
    (drive / "Windows/Panther/unattend.xml").write_text("<unattend/>")
    result = run("answer-files")
    assert result.status is Status.FAIL  # the Panther cache still refuses
    assert result.details == ("Windows/Panther/unattend.xml",)
    assert "(Windows/System32/Sysprep/unattend.xml is replaced by ours)" in (result.hint or "")


def test_answer_files_fail_on_the_setup_registry_value(run, drive):
    set_platform(drive, registry={"HKLM\\SYSTEM\\Setup": {"UnattendFile": "D:\\a.xml"}})
    assert "UnattendFile" in run("answer-files").reason + str(run("answer-files").details)


def test_setupcomplete_is_a_warning_that_it_will_be_chained(run, drive):
    assert run("setupcomplete").status is Status.PASS
    script = drive / "Windows/Setup/Scripts/SetupComplete.cmd"
    script.parent.mkdir(parents=True)
    script.write_text("echo cloudbase\r\n")
    result = run("setupcomplete")
    assert result.status is Status.WARN
    assert CHAINED_SETUPCOMPLETE.rsplit("/", 1)[1] in result.reason


def test_domain_joined_is_a_warning(run, drive):
    assert run("domain").status is Status.PASS
    set_facts(drive, domain={"part_of_domain": True, "domain": "corp.example.com"})
    result = run("domain")
    assert result.status is Status.WARN
    assert "corp.example.com" in result.reason


def test_install_record_fails_when_an_install_was_not_finished(run, drive):
    assert run("install-record").status is Status.PASS
    record = drive / "ProgramData/vmprep/sysprep-install/install.json"
    record.parent.mkdir(parents=True)
    record.write_text(json.dumps({"status": "installed", "files": []}))
    assert "--restore" in run("install-record").hint
    record.write_text(json.dumps({"status": "restored", "files": []}))
    assert run("install-record").status is Status.PASS


def test_a_probe_that_cannot_answer_is_a_warning_not_a_pass(run, drive):
    set_platform(drive, commands=[{"match": "Get-AppxPackage", "returncode": 1, "stderr": "boom"}])
    result = run("appx")
    assert result.status is Status.WARN
    assert "could not check" in result.reason
    assert "boom" in result.reason


def test_python_fails_under_windows_temp(run, drive, spec):
    exe = drive / "Windows/Temp/py/python.exe"
    exe.parent.mkdir(parents=True)
    exe.write_bytes(b"MZ")
    spec.data["agent"]["runtime"]["python"] = "C:\\Windows\\Temp\\py\\python.exe"
    assert "Windows\\Temp" in run("python").reason


def test_an_already_sysprepped_vm_is_told_so(run, drive):
    (drive / "Windows/Setup/State/State.ini").write_text(
        "[State]\nImageState=IMAGE_STATE_GENERALIZE_RESEAL_TO_OOBE\n"
    )
    assert "already sysprepped" in run("image-state").hint


@pytest.mark.parametrize(
    ("answer", "status", "words"),
    [
        ({"stdout": "3.8.0"}, Status.PASS, "(Python 3.8.0) exists"),
        ({"stdout": "3.13.2\n"}, Status.PASS, "(Python 3.13.2) exists"),
        (
            {"stdout": "3.7.9"},
            Status.FAIL,
            "is Python 3.7.9, older than the agent's floor, Python 3.8",
        ),
        ({"stdout": "2.7.18"}, Status.FAIL, "older than the agent's floor"),
        (
            {"returncode": 1, "stderr": "boom\nThe code execution cannot proceed"},
            Status.FAIL,
            "does not run (exit 1: The code execution cannot proceed)",
        ),
        ({"stdout": "garbage"}, Status.FAIL, "does not run (exit 0: garbage)"),
    ],
)
def test_python_checks_the_interpreters_version(run, drive, answer, status, words):
    commands = clean_platform_data()["commands"]
    set_platform(drive, commands=[{"match": "sys.version_info", **answer}, *commands])
    result = run("python")
    assert result.status is status
    assert words in result.reason


def test_python_runs_the_configured_interpreter_isolated(run, drive):
    platform = DirectoryPlatform.load(drive)
    assert run("python", platform=platform).status is Status.PASS
    assert platform.calls == [(PYTHON, "-I", "-S", "-c", VERSION_PROBE)]
