"""The whole flow with a hand-made overlay and the recording fake sysprep."""

from __future__ import annotations

import json

import pytest

from tests.sysprep.conftest import hand_overlay, scenario, set_facts
from vmprep.sysprep import install, state
from vmprep.sysprep.checks import CHAINED_SETUPCOMPLETE, SETUPCOMPLETE
from vmprep.sysprep.generalize import SysprepError, execute, parse_duration, prepare
from vmprep.sysprep.platform import DirectoryPlatform
from vmprep.sysprep.preflight import Status

ANSWER = "Windows/System32/Sysprep/unattend.xml"  # where generalize installs the answer file
CACHE = "Windows/Panther/unattend.xml"  # Setup's cache: render's layout, never installed to
PACKAGE = {"name": "Contoso.Notes", "full_name": "Contoso.Notes_1.0.0.0_x64__abc", "users": ["u"]}
# What the fake sysprep and the run itself leave behind, apart from the overlay.
RUN_TRACES = (
    "fake-sysprep",
    "Windows/System32/Sysprep/Panther",
    "Windows/Setup/State",
    "ProgramData/vmprep/sysprep-install",
)


def snapshot(root):
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and not p.relative_to(root).as_posix().startswith(RUN_TRACES)
    }


def recording(calls):
    def renderer(spec, python, chain):
        calls.append((python, chain))
        return hand_overlay(spec, python, chain)

    return renderer


def test_prepare_plans_everything_and_changes_nothing(request_for, drive):
    before = snapshot(drive)
    calls = []
    plan = prepare(request_for(renderer=recording(calls)))
    assert not plan.refused
    assert calls == [(None, None)]  # render takes the interpreter from the spec
    assert plan.argv == [
        str(drive / "Windows/System32/Sysprep/sysprep.exe"),
        "/generalize",
        "/oobe",
        "/quit",
        "/quiet",
        f"/unattend:{drive / ANSWER}",
    ]
    assert plan.expect == state.GENERALIZE_RESEAL_TO_OOBE
    assert plan.shutdown == ["shutdown.exe", "/s", "/t", "0", "/d", "p:4:1"]
    assert plan.targets[CACHE] == "C:\\Windows\\System32\\Sysprep\\unattend.xml"
    assert [p.rel for p in plan.files] == sorted(hand_overlay(None, "p", None).files)
    placed = {p.rel: p for p in plan.files}
    assert (placed[CACHE].target, placed[CACHE].dest) == (ANSWER, drive / ANSWER)
    assert all(p.target == p.rel for p in plan.files if p.rel != CACHE)
    assert snapshot(drive) == before


def test_a_failed_check_refuses_before_rendering(request_for, drive):
    set_facts(drive, appx=[PACKAGE])
    calls = []
    plan = prepare(request_for(renderer=recording(calls)))
    assert plan.refused
    assert calls == []
    assert plan.argv == []


def test_success_installs_runs_and_shuts_down(request_for, drive):
    req = request_for()
    plan = prepare(req)
    result = execute(req, plan, log=lambda message: None)
    assert result.final_state == state.GENERALIZE_RESEAL_TO_OOBE
    overlay = hand_overlay(None, "C:\\Program Files\\Python312\\python.exe", None).files
    for rel, data in overlay.items():
        assert (drive / (ANSWER if rel == CACHE else rel)).read_bytes() == data
    # sysprep got our installed answer file, at System32\Sysprep; the Panther cache was
    # left to sysprep (which fills it from /unattend:)
    seen = json.loads((drive / "fake-sysprep-seen.json").read_text())
    assert seen == {"unattend": [str(drive / ANSWER)], "panther_cache_existed": False}
    assert (drive / "fake-sysprep-unattend.xml").read_bytes() == overlay[CACHE]
    assert (drive / CACHE).read_bytes() == overlay[CACHE]  # cached by the fake sysprep
    record = json.loads((drive / install.STATE_DIR / "install.json").read_text())
    assert record["status"] == "generalized"
    assert {e["path"]: e["overlay"] for e in record["files"]}[ANSWER] == CACHE
    assert CACHE not in {e["path"] for e in record["files"]}
    assert not (drive / install.STATE_DIR / "backup").exists()
    assert req.platform.calls[-1] == ("shutdown.exe", "/s", "/t", "0", "/d", "p:4:1")


def test_no_shutdown_leaves_it_running(request_for):
    req = request_for(no_shutdown=True)
    plan = prepare(req)
    assert plan.shutdown is None
    execute(req, plan, log=lambda message: None)
    assert not any(call[0] == "shutdown.exe" for call in req.platform.calls)


@pytest.mark.parametrize(
    ("name", "message", "cause"),
    [
        ("appx", "ImageState is IMAGE_STATE_UNDEPLOYABLE", "appx"),
        ("exit", "sysprep exited with 1", "bitlocker"),
        ("hang", "did not finish within 0.5s", None),
    ],
)
def test_a_failure_restores_everything_and_explains(request_for, drive, name, message, cause):
    (drive / ANSWER).write_bytes(b"<old/>")
    before = snapshot(drive)
    scenario(drive, name)
    req = request_for(timeout=0.5)
    plan = prepare(req)
    assert not plan.refused  # an old answer file in our place is only a warning
    with pytest.raises(SysprepError, match=message) as raised:
        execute(req, plan, log=lambda message: None)
    assert snapshot(drive) == before
    assert (drive / ANSWER).read_bytes() == b"<old/>"
    assert not (drive / CACHE).exists()
    assert ANSWER in raised.value.restored
    assert [c.id for c in raised.value.diagnosis.causes] == ([cause] if cause else [])
    assert raised.value.exit_code == 4
    assert not any(call[0] == "shutdown.exe" for call in req.platform.calls)


def test_an_existing_setupcomplete_is_chained_and_restored(request_for, drive):
    original = drive / SETUPCOMPLETE
    original.parent.mkdir(parents=True)
    original.write_bytes(b"echo cloudbase-init\r\n")
    calls = []
    req = request_for(renderer=recording(calls))
    plan = prepare(req)
    chain = "C:\\Windows\\Setup\\Scripts\\SetupComplete.vmprep-chained.cmd"
    assert calls[0][1] == chain
    assert plan.overlay[CHAINED_SETUPCOMPLETE] == b"echo cloudbase-init\r\n"
    assert plan.targets[CHAINED_SETUPCOMPLETE] == chain
    execute(req, plan, log=lambda message: None)
    assert (drive / CHAINED_SETUPCOMPLETE).read_bytes() == b"echo cloudbase-init\r\n"
    assert f'call "{chain}"'.encode() in original.read_bytes()


def test_a_failed_run_puts_the_original_setupcomplete_back(request_for, drive):
    original = drive / SETUPCOMPLETE
    original.parent.mkdir(parents=True)
    original.write_bytes(b"echo cloudbase-init\r\n")
    scenario(drive, "exit")
    req = request_for()
    with pytest.raises(SysprepError):
        execute(req, prepare(req), log=lambda message: None)
    assert original.read_bytes() == b"echo cloudbase-init\r\n"
    assert not (drive / CHAINED_SETUPCOMPLETE).exists()


class RemovingPlatform(DirectoryPlatform):
    """Removing the packages works: afterwards the probe reports none."""

    def run(self, argv, *, timeout=300):
        result = super().run(argv, timeout=timeout)
        if "Remove-AppxPackage" in argv[-1]:
            set_facts(self.root)
        return result


def test_fix_appx_removes_the_packages_and_checks_again(request_for, drive):
    set_facts(drive, appx=[PACKAGE])
    req = request_for(platform=RemovingPlatform.load(drive), fix_appx=True)
    plan = prepare(req)
    assert plan.appx_fix[-1].endswith(
        "Remove-AppxPackage -AllUsers -Package 'Contoso.Notes_1.0.0.0_x64__abc'"
    )
    assert tuple(plan.appx_fix) in req.platform.calls
    assert {r.id: r.status for r in plan.checks}["appx"] is Status.PASS
    assert not plan.refused


def test_fix_appx_in_a_dry_run_only_shows_the_command(request_for, drive):
    set_facts(drive, appx=[PACKAGE])
    req = request_for(platform=RemovingPlatform.load(drive), fix_appx=True, dry_run=True)
    plan = prepare(req)
    assert plan.refused
    assert plan.appx_fix is not None
    assert tuple(plan.appx_fix) not in req.platform.calls


def test_a_failing_removal_keeps_the_check_failed_and_says_why(request_for, drive):
    set_facts(drive, appx=[PACKAGE])
    data = json.loads((drive / ".vmprep-fake-platform.json").read_text())
    data["commands"].insert(
        0, {"match": "Remove-AppxPackage", "returncode": 1, "stderr": "0x80073CFA"}
    )
    (drive / ".vmprep-fake-platform.json").write_text(json.dumps(data))
    plan = prepare(request_for(platform=DirectoryPlatform.load(drive), fix_appx=True))
    appx = {r.id: r for r in plan.checks}["appx"]
    assert appx.status is Status.FAIL
    assert "removing them failed (1): 0x80073CFA" in appx.reason


def test_a_leftover_answer_file_in_the_panther_cache_refuses(request_for, drive):
    (drive / CACHE).write_text("<unattend/>")
    plan = prepare(request_for())
    assert plan.refused
    assert {r.id: r.status for r in plan.checks}["answer-files"] is Status.FAIL


def test_an_old_answer_file_next_to_sysprep_is_replaced_with_a_warning(request_for, drive):
    (drive / ANSWER).write_bytes(b"<old/>")
    req = request_for()
    plan = prepare(req)
    assert {r.id: r.status for r in plan.checks}["answer-files"] is Status.WARN
    assert {p.rel: p.replaces for p in plan.files}[CACHE] is True
    execute(req, plan, log=lambda message: None)
    assert (drive / "fake-sysprep-unattend.xml").read_bytes() != b"<old/>"
    assert not (drive / install.STATE_DIR / "backup").exists()  # the old one does not ship


def test_sysprep_pointed_at_its_own_cache_is_refused_by_the_fake(request_for, drive):
    """Guards the fake itself: handing sysprep the Panther cache must fail the test run."""
    req = request_for()
    plan = prepare(req)
    (drive / CACHE).write_bytes(b"<unattend/>")
    plan.argv[-1] = f"/unattend:{drive / CACHE}"
    with pytest.raises(SysprepError, match="sysprep exited with 2"):
        execute(req, plan, log=lambda message: None)


@pytest.mark.parametrize(
    ("text", "seconds"), [("500ms", 0.5), ("30s", 30), ("5m", 300), ("1h", 3600), (12, 12)]
)
def test_parse_duration(text, seconds):
    assert parse_duration(text) == seconds


def test_parse_duration_rejects_nonsense():
    with pytest.raises(ValueError, match="not a duration"):
        parse_duration("soon")
