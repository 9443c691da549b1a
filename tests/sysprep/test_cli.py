"""`vmprep sysprep` through click: exit codes 0 / 1 / 2 / 3 / 4 and what it prints."""

from __future__ import annotations

import json

import pytest

from tests.sysprep.conftest import hand_overlay, scenario, set_facts, set_platform
from vmprep.sysprep import install


@pytest.fixture(autouse=True)
def hand_made_overlay(monkeypatch):
    monkeypatch.setattr("vmprep.sysprep.generalize.render_overlay", hand_overlay)


@pytest.fixture
def sysprep(run_vmprep, drive, spec_file):
    def invoke(*args: str, expect: int = 0):
        return run_vmprep("sysprep", *args, "--root", str(drive), str(spec_file), expect=expect)

    return invoke


def test_check_passes_on_a_clean_drive(sysprep):
    result = sysprep("--check")
    assert "vmprep sysprep preflight" in result.stdout
    assert "image-state" in result.stdout


def test_check_as_json(sysprep):
    doc = json.loads(sysprep("--check", "--format", "json").stdout)
    assert doc["ok"] is True
    assert [c["status"] for c in doc["checks"]] == ["pass"] * len(doc["checks"])
    assert set(doc["checks"][0]) == {"id", "status", "reason", "hint", "details"}


def test_a_failing_check_exits_3(sysprep, drive):
    set_facts(drive, appx=[{"name": "A", "full_name": "A_1_x64__p", "users": ["u"]}])
    result = sysprep("--check", "--format", "json", expect=3)
    doc = json.loads(result.stdout)
    assert doc["ok"] is False
    appx = next(c for c in doc["checks"] if c["id"] == "appx")
    assert (appx["status"], appx["details"]) == ("fail", ["A_1_x64__p (users: u)"])
    assert "error: preflight refused: appx; nothing was changed" in result.stderr


def test_skip_check_is_loud(sysprep, drive):
    set_platform(drive, admin=False)
    result = sysprep("--check", "--skip-check", "admin")
    assert "WARNING: preflight check 'admin' was SKIPPED" in result.stderr


def test_an_unknown_skip_id_exits_2(sysprep):
    result = sysprep("--check", "--skip-check", "nope", expect=2)
    assert "unknown check id(s) for --skip-check: nope" in result.stderr


def test_dry_run_prints_files_and_command_and_changes_nothing(sysprep, drive, monkeypatch):
    monkeypatch.setenv("COLUMNS", "400")  # no folding inside the files table
    before = sorted(p for p in drive.rglob("*"))
    result = sysprep("--generalize", "--dry-run")
    assert sorted(p for p in drive.rglob("*")) == before
    text = result.stdout.replace("\n", "")
    assert "/generalize /oobe /quit /quiet /unattend:" in text
    assert f"/unattend:{drive / 'Windows/System32/Sysprep/unattend.xml'}" in text
    assert "C:\\Windows\\System32\\Sysprep\\unattend.xml" in text  # the files table
    assert "C:\\Windows\\Panther" not in text
    assert "shutdown.exe /s /t 0" in result.stdout


def test_dry_run_as_json(sysprep, drive):
    doc = json.loads(
        sysprep("--generalize", "--dry-run", "--no-shutdown", "--format", "json").stdout
    )
    assert doc["command"][1:5] == ["/generalize", "/oobe", "/quit", "/quiet"]
    assert doc["shutdown"] is None
    unattend = next(f for f in doc["files"] if f["path"] == "Windows/Panther/unattend.xml")
    assert unattend["target"] == "C:\\Windows\\System32\\Sysprep\\unattend.xml"
    assert doc["command"][-1] == f"/unattend:{drive / 'Windows/System32/Sysprep/unattend.xml'}"
    assert not any("Panther" in f["target"] for f in doc["files"])


def test_generalize_succeeds(sysprep, drive):
    result = sysprep("--generalize")
    assert "ImageState is IMAGE_STATE_GENERALIZE_RESEAL_TO_OOBE" in result.stderr
    assert "shutting down: shutdown.exe /s /t 0" in result.stderr
    assert (drive / "Windows/Setup/Scripts/SetupComplete.cmd").exists()


@pytest.mark.parametrize(
    ("name", "needle"),
    [
        ("appx", "cause: AppX package(s) installed for a user"),
        ("exit", "cause: BitLocker"),
        ("hang", "did not finish within 0.5s"),
    ],
)
def test_generalize_failures_exit_4_and_explain(sysprep, drive, name, needle):
    scenario(drive, name)
    result = sysprep("--generalize", "--timeout", "500ms", expect=4)
    assert needle in result.stderr
    assert "every replaced file was restored" in result.stderr
    assert not (drive / "Windows/Setup/Scripts/SetupComplete.cmd").exists()


def test_generalize_as_json_carries_the_final_outcome(sysprep, drive):
    doc = json.loads(sysprep("--generalize", "--format", "json").stdout)
    assert doc["ok"] is True
    assert doc["outcome"]["state"] == "generalized"


def test_a_failed_generalize_as_json_says_so_and_why(sysprep, drive):
    scenario(drive, "exit")
    result = sysprep("--generalize", "--format", "json", "--timeout", "500ms", expect=4)
    doc = json.loads(result.stdout)  # one document: the preflight and the outcome
    assert doc["ok"] is True  # the preflight passed
    outcome = doc["outcome"]
    assert outcome["state"] == "failed"
    assert "every replaced file was restored" in outcome["error"]
    assert any("BitLocker" in c["summary"] for c in outcome["causes"])
    assert outcome["logs"]


def test_generalize_refuses_with_exit_3_and_changes_nothing(sysprep, drive):
    set_platform(drive, processes=["TiWorker.exe"])
    sysprep("--generalize", expect=3)
    assert not (drive / install.STATE_DIR).exists()


def test_restore_undoes_an_unfinished_install(run_vmprep, drive):
    run_vmprep("sysprep", "--restore", "--root", str(drive), expect=3)
    install.install({"x.txt": b"x"}, drive, drive / install.STATE_DIR)
    result = run_vmprep("sysprep", "--restore", "--root", str(drive))
    assert "restored 1 file(s)" in result.stderr
    assert not (drive / "x.txt").exists()


def test_a_mode_is_required(run_vmprep, drive, spec_file):
    result = run_vmprep("sysprep", "--root", str(drive), str(spec_file), expect=2)
    assert "--check, --generalize or --restore" in result.stderr


def test_a_bad_spec_exits_1(run_vmprep, drive, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("version: 1\nimage: {name: x, os: windows-7}\n")
    run_vmprep("sysprep", "--check", "--root", str(drive), str(bad), expect=1)


def test_a_spec_that_does_not_exist_is_a_usage_error_like_render(run_vmprep, drive, tmp_path):
    # It was exit 1 with `nope.yaml:0:0: error: cannot read the file` and a hint to run
    # `vmprep validate`; render says the same thing as a usage error (exit 2).
    missing = tmp_path / "nope.yaml"
    result = run_vmprep("sysprep", "--check", "--root", str(drive), str(missing), expect=2)
    assert "does not exist" in result.stderr
    assert "vmprep validate" not in result.stderr


def test_a_bad_timeout_is_a_usage_error(sysprep):
    sysprep("--generalize", "--timeout", "soon", expect=2)


def test_a_dry_run_with_failed_checks_still_shows_files_and_command(sysprep, drive):
    set_platform(drive, admin=False)
    result = sysprep("--generalize", "--dry-run", "--format", "json", expect=3)
    doc = json.loads(result.stdout)
    assert doc["ok"] is False
    assert doc["command"][1] == "/generalize"
    assert doc["not_planned"] is None


def test_a_dry_run_says_when_the_command_cannot_be_known(run_vmprep, tmp_path, spec_file):
    empty = tmp_path / "empty drive"  # spaces, and no 8.3 names in the fake
    empty.mkdir()
    result = run_vmprep(
        "sysprep", "--generalize", "--dry-run", "--root", str(empty), str(spec_file), expect=3
    )
    assert "files and command unknown: the answer file path has spaces" in result.stdout.replace(
        "\n", ""
    )


def test_fix_appx_says_what_it_ran_and_rechecks(sysprep, drive):
    # This fake's Remove-AppxPackage "succeeds" but the package stays: the check must say so.
    set_facts(drive, appx=[{"name": "A", "full_name": "A_1_x64__p", "users": ["u"]}])
    result = sysprep("--check", "--fix-appx", "--format", "json", expect=3)
    assert "ran: powershell.exe" in result.stderr
    assert "Remove-AppxPackage -AllUsers -Package 'A_1_x64__p'" in result.stderr
    appx = next(c for c in json.loads(result.stdout)["checks"] if c["id"] == "appx")
    assert appx["reason"].endswith("still there after Remove-AppxPackage")


def test_two_modes_at_once_are_a_usage_error_and_change_nothing(sysprep, drive):
    before = sorted(p.relative_to(drive) for p in drive.rglob("*"))
    result = sysprep("--check", "--generalize", expect=2)
    assert "--check and --generalize cannot be combined" in result.stderr
    assert sorted(p.relative_to(drive) for p in drive.rglob("*")) == before
