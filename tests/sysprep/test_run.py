"""The sysprep command line, and running the recording fake sysprep as a real process."""

from __future__ import annotations

import json

import pytest

from tests.sysprep.conftest import scenario, set_platform
from vmprep.errors import ExternalToolError
from vmprep.sysprep import state
from vmprep.sysprep.platform import DirectoryPlatform
from vmprep.sysprep.run import (
    SysprepFailed,
    default_sysprep_exe,
    run_sysprep,
    shut_down,
    shutdown_argv,
    sysprep_argv,
    unattend_arg,
)

EXE = "C:\\Windows\\System32\\Sysprep\\sysprep.exe"


def test_the_default_command_quits_and_never_shuts_down():
    from pathlib import PureWindowsPath

    argv = sysprep_argv(PureWindowsPath(EXE), "C:\\Windows\\Panther\\unattend.xml", {})
    assert argv == [
        EXE,
        "/generalize",
        "/oobe",
        "/quit",
        "/quiet",
        "/unattend:C:\\Windows\\Panther\\unattend.xml",
    ]


def test_vm_mode_and_audit():
    from pathlib import PureWindowsPath

    argv = sysprep_argv(PureWindowsPath(EXE), "U", {"vm_mode": True, "oobe": False})
    assert argv[1:] == ["/generalize", "/audit", "/quit", "/quiet", "/mode:vm", "/unattend:U"]
    # /mode:vm is only valid with /generalize
    argv = sysprep_argv(PureWindowsPath(EXE), "U", {"vm_mode": True, "generalize": False})
    assert argv[1:] == ["/oobe", "/quit", "/quiet", "/unattend:U"]


def test_a_path_with_spaces_uses_its_short_name(tmp_path):
    long = str(tmp_path / "Program Files" / "unattend.xml")
    fake = DirectoryPlatform(
        tmp_path, short_paths={long: str(tmp_path / "PROGRA~1" / "unattend.xml")}
    )
    assert unattend_arg(fake, tmp_path / "Program Files" / "unattend.xml").endswith(
        "PROGRA~1/unattend.xml"
    )
    assert unattend_arg(fake, tmp_path / "plain.xml") == str(tmp_path / "plain.xml")


def test_a_path_with_spaces_and_no_short_name_is_refused(tmp_path):
    with pytest.raises(ExternalToolError, match=r"8\.3"):
        unattend_arg(DirectoryPlatform(tmp_path), tmp_path / "Program Files" / "unattend.xml")


def test_default_sysprep_exe_is_under_the_root(tmp_path):
    assert (
        default_sysprep_exe(DirectoryPlatform(tmp_path))
        == tmp_path / "Windows/System32/Sysprep/sysprep.exe"
    )


def argv_for(drive):
    return [str(drive / "Windows/System32/Sysprep/sysprep.exe"), "/generalize", "/oobe", "/quit"]


def test_success_waits_for_the_image_state(drive, platform):
    result = run_sysprep(
        platform, argv_for(drive), expect=state.GENERALIZE_RESEAL_TO_OOBE, timeout=20
    )
    assert (result.returncode, result.final_state) == (0, state.GENERALIZE_RESEAL_TO_OOBE)
    assert json.loads((drive / "fake-sysprep-argv.json").read_text()) == [
        "/generalize",
        "/oobe",
        "/quit",
    ]


def test_a_state_that_changes_late_is_waited_for(drive, platform):
    scenario(drive, "no-state")
    ticks = []

    def flip_later(seconds):
        ticks.append(seconds)
        if len(ticks) == 3:
            (drive / state.STATE_INI).write_text(
                "[State]\nImageState=IMAGE_STATE_GENERALIZE_RESEAL_TO_OOBE\n"
            )

    result = run_sysprep(
        platform,
        argv_for(drive),
        expect=state.GENERALIZE_RESEAL_TO_OOBE,
        timeout=20,
        poll_interval=0.5,
        sleep=flip_later,
    )
    assert result.final_state == state.GENERALIZE_RESEAL_TO_OOBE
    assert ticks == [0.5, 0.5, 0.5]


def test_a_state_that_never_comes_fails_after_the_settle_time(drive, platform):
    scenario(drive, "appx")
    with pytest.raises(SysprepFailed, match="ImageState is IMAGE_STATE_UNDEPLOYABLE"):
        run_sysprep(
            platform,
            argv_for(drive),
            expect=state.GENERALIZE_RESEAL_TO_OOBE,
            timeout=20,
            poll_interval=0.01,
            settle=0.1,
        )


def test_a_non_zero_exit_fails(drive, platform):
    scenario(drive, "exit")
    with pytest.raises(SysprepFailed, match="exited with 1"):
        run_sysprep(platform, argv_for(drive), expect=state.GENERALIZE_RESEAL_TO_OOBE, timeout=20)


def test_a_hang_is_stopped_at_the_timeout(drive, platform):
    scenario(drive, "hang")
    with pytest.raises(SysprepFailed, match=r"did not finish within 0\.5s"):
        run_sysprep(platform, argv_for(drive), expect=state.GENERALIZE_RESEAL_TO_OOBE, timeout=0.5)


def test_a_missing_executable_fails(drive, platform):
    with pytest.raises(SysprepFailed, match="could not start sysprep"):
        run_sysprep(platform, [str(drive / "nope.exe")], expect="X", timeout=5)


def test_shutdown_commands(drive, platform):
    assert shutdown_argv("quit") is None
    assert shut_down(platform, "reboot") == ["shutdown.exe", "/r", "/t", "0", "/d", "p:4:1"]
    assert platform.calls == [("shutdown.exe", "/r", "/t", "0", "/d", "p:4:1")]
    set_platform(drive, commands=[])
    with pytest.raises(ExternalToolError, match="the image is generalized"):
        shut_down(DirectoryPlatform.load(drive), "shutdown")


def test_the_wait_reports_progress_with_the_newest_log_line(drive, platform):
    from vmprep.sysprep import panther

    scenario(drive, "hang")
    seen = []
    with pytest.raises(SysprepFailed, match="did not finish"):
        run_sysprep(
            platform,
            argv_for(drive),
            expect=state.GENERALIZE_RESEAL_TO_OOBE,
            timeout=3,
            poll_interval=0.2,
            progress=seen.append,
            last_log_line=lambda: panther.last_line(drive),
        )
    assert len(seen) >= 3
    assert all(p.running for p in seen)
    assert [p.seconds for p in seen] == sorted(p.seconds for p in seen)
    assert any(p.last_log_line and "SYSPRP" in p.last_log_line for p in seen)


def test_progress_goes_on_while_image_state_lags(drive, platform):
    scenario(drive, "no-state")
    seen = []

    def flip_later(seconds):
        if len(seen) == 2:
            (drive / state.STATE_INI).write_text(
                "[State]\nImageState=IMAGE_STATE_GENERALIZE_RESEAL_TO_OOBE\n"
            )

    run_sysprep(
        platform,
        argv_for(drive),
        expect=state.GENERALIZE_RESEAL_TO_OOBE,
        timeout=20,
        poll_interval=0.5,
        sleep=flip_later,
        progress=seen.append,
    )
    assert [p.running for p in seen][-2:] == [False, False]


@pytest.mark.parametrize("tty", [True, False])
def test_progress_lines_on_a_terminal_and_in_a_log(tty):
    import io

    from rich.console import Console

    from vmprep.commands.reporters.sysprep import ProgressLines
    from vmprep.sysprep.run import Progress

    buffer = io.StringIO()
    lines = ProgressLines(Console(file=buffer, force_terminal=tty, width=100))
    for second in range(0, 200, 2):
        lines(Progress(float(second), "IMAGE_STATE_COMPLETE", True, "Info SYSPRP \x1b[31mx"))
    lines.close()
    text = buffer.getvalue()
    if tty:  # one status line, rewritten at every poll
        assert text.count("\r") == 100
        assert text.endswith("\n")
    else:  # a line a minute: at 60, 120 and 180 s
        assert [line.split(":")[1].strip()[:5] for line in text.splitlines()] == [
            "1m00s",
            "2m00s",
            "3m00s",
        ]
    assert "\x1b[31m" not in text  # a log line cannot drive the terminal
