"""msiexec's command line by msiexec's own rules (issue #19 item 2, issue #9).

Rules from https://learn.microsoft.com/windows/win32/msi/command-line-options: a property is
`NAME="value"`, a literal quote inside the value is doubled, `NAME=""` is the empty value, and
a backslash escapes nothing. `parse_msiexec` below is a reference parser written from those
rules, not from vmprep's code; every value must survive the round trip.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.agent.core.test_winplatform import Recorder
from vmprep.agent.logs import Log
from vmprep.agent.platform import msiexec as m
from vmprep.agent.platform.base import ProcResult
from vmprep.agent.secrets import Vault
from vmprep.agent.steps import StepContext, runner

NAMES = st.from_regex(r"[A-Z][A-Z0-9_.]{0,12}", fullmatch=True)
VALUES = st.text(st.characters(blacklist_characters="\x00", blacklist_categories=("Cs",)))
LOG = "C:\\ProgramData\\vmprep\\logs\\msi-baked-x.log"


def parse_msiexec(line: str) -> list[str]:
    """Split a command line the way the msiexec documentation describes: blanks separate
    arguments outside quotes; a quote opens or closes a quoted section; inside one, two quotes
    are one literal quote; a backslash is an ordinary character."""
    args: list[str] = []
    i, n = 0, len(line)
    while i < n:
        while i < n and line[i] in " \t":
            i += 1
        if i == n:
            break
        buf: list[str] = []
        quoted = False
        while i < n:
            c = line[i]
            if c == '"':
                if quoted and line[i + 1 : i + 2] == '"':
                    buf.append('"')
                    i += 2
                    continue
                quoted = not quoted
                i += 1
                continue
            if c in " \t" and not quoted:
                break
            buf.append(c)
            i += 1
        args.append("".join(buf))
    return args


def properties_of(args: list[str]) -> dict[str, str]:
    return dict(a.split("=", 1) for a in args[7:])


@given(st.dictionaries(NAMES, VALUES, max_size=6))
def test_every_property_value_round_trips_through_msiexecs_rules(props: dict[str, str]) -> None:
    line = m.msi_command_line("C:\\Windows\\System32\\msiexec.exe", "C:\\p a\\x.msi", props, LOG)
    args = parse_msiexec(line)
    assert args[:7] == [
        "C:\\Windows\\System32\\msiexec.exe",
        "/i",
        "C:\\p a\\x.msi",
        "/qn",
        "/norestart",
        "/l*v",
        LOG,
    ]
    assert properties_of(args) == props


@pytest.mark.parametrize(
    ("value", "written"),
    [
        ('say "hi" now', '"say ""hi"" now"'),  # the value: arrived as `say \` before
        ("C:\\Program Files\\Trail\\", '"C:\\Program Files\\Trail\\"'),  # no doubled backslash
        ("", '""'),  # the documented way to clear a property
        ('Embedded "Quotes" White Space', '"Embedded ""Quotes"" White Space"'),  # the docs' own
    ],
)
def test_values_are_written_as_the_msiexec_documentation_shows(value: str, written: str) -> None:
    line = m.msi_command_line("msiexec.exe", "C:\\a.msi", {"P": value}, "C:\\l.log")
    assert line == f'"msiexec.exe" /i "C:\\a.msi" /qn /norestart /l*v "C:\\l.log" P={written}'


def test_list2cmdline_would_have_sent_backslash_escapes_msiexec_does_not_read() -> None:
    # What the agent did before: the C runtime's escaping, which msiexec takes literally.
    old = subprocess.list2cmdline(['P=say "hi" now', "D=C:\\Program Files\\Trail\\"])
    assert properties_of(["", "", "", "", "", "", "", *parse_msiexec(old)]) != {
        "P": 'say "hi" now',
        "D": "C:\\Program Files\\Trail\\",
    }


def test_uninstall_and_what_cannot_be_written() -> None:
    assert m.msi_command_line("msiexec.exe", "C:\\a.msi", {}, "L", state="absent").startswith(
        '"msiexec.exe" /x "C:\\a.msi"'
    )
    with pytest.raises(m.MsiCommandError, match="NUL"):
        m.msi_command_line("msiexec.exe", "C:\\a.msi", {"P": "a\x00b"}, "L")
    with pytest.raises(m.MsiCommandError, match="not a Windows path"):
        m.msi_command_line("msiexec.exe", 'C:\\a".msi', {}, "L")
    with pytest.raises(m.MsiCommandError, match="32766"):
        m.msi_command_line("msiexec.exe", "C:\\a.msi", {"P": "x" * 33_000}, "L")


def test_a_secret_property_turns_off_verbose_and_property_logging() -> None:
    line = m.msi_command_line(
        "msiexec.exe",
        "C:\\a.msi",
        {"TOKEN": "s3cret", "DIR": "C:\\x"},
        "L",
        secret_names=frozenset({"TOKEN"}),
    )
    args = parse_msiexec(line)
    assert args[5] == "/lwe"  # no v (verbose), no p (properties), no *
    plain = m.msi_command_line("msiexec.exe", "C:\\a.msi", {"DIR": "C:\\x"}, "L")
    assert parse_msiexec(plain)[5] == "/l*v"


def ctx_for(
    platform: Recorder, tmp: Path, secrets: dict[str, str], **options: object
) -> StepContext:
    return StepContext(
        platform=platform,
        vault=Vault(secrets),
        log=Log(None, echo=None),
        state_dir=tmp,
        options=dict(options),
    )


class LoggingRecorder(Recorder):
    """A recording msiexec that writes a UTF-16 log repeating a secret, as an error can."""

    def run(self, argv, *, timeout=None, env=None, cwd=None, stdin=None) -> ProcResult:  # type: ignore[override]
        result = super().run(argv, timeout=timeout, env=env, cwd=cwd, stdin=stdin)
        log = Path(parse_msiexec(argv)[6])
        log.write_bytes("\ufeffError 1920: token s3cret rejected\r\n".encode("utf-16-le"))
        return result


def test_what_msiexec_logged_is_scrubbed_of_secrets(tmp_path: Path) -> None:
    p = LoggingRecorder(tmp_path)
    ctx = ctx_for(p, tmp_path, {"tok": "s3cret"})
    ctx.step_key = "baked-agent"
    out = runner("msi")({"path": "C:\\a.msi", "properties": {"TOKEN": {"secret": "tok"}}}, ctx)
    assert out.ok
    log = tmp_path / "logs" / "msi-baked-agent.log"
    assert log.read_bytes().decode("utf-16") == "Error 1920: token *** rejected\r\n"


def test_logs_are_named_per_step_so_an_uninstall_keeps_the_install_log(tmp_path: Path) -> None:
    p = Recorder(tmp_path)
    for key, state in (("baked-install", "present"), ("remote-remove", "absent")):
        ctx = ctx_for(p, tmp_path, {})
        ctx.step_key = key
        runner("msi")({"path": "C:\\t\\tools.msi", "state": state}, ctx)
    logs = [parse_msiexec(argv)[6] for argv, _ in p.calls]
    assert [Path(x).name for x in logs] == ["msi-baked-install.log", "msi-remote-remove.log"]


def test_1618_another_installation_is_retried_with_backoff_then_given_up(tmp_path: Path) -> None:
    p = Recorder(tmp_path, codes=[1618, 1618, 0])
    out = runner("msi")({"path": "C:\\a.msi"}, ctx_for(p, tmp_path, {}, msi_busy_delays=[0, 0, 0]))
    assert (out.ok, len(p.calls)) == (True, 3)
    p = Recorder(tmp_path, codes=[1618] * 5)
    out = runner("msi")({"path": "C:\\a.msi"}, ctx_for(p, tmp_path, {}, msi_busy_delays=[0, 0]))
    assert (out.ok, out.exit_code, len(p.calls)) == (False, 1618, 3)
    p = Recorder(tmp_path, codes=[1618] * 5)
    ctx = ctx_for(p, tmp_path, {}, msi_busy_delays=[60, 60])
    ctx.timeout = 30.0  # the step's timeout bounds the retries: no 60 s wait
    assert (runner("msi")({"path": "C:\\a.msi"}, ctx).exit_code, len(p.calls)) == (1618, 1)


def test_the_default_1618_backoff_grows_and_is_bounded() -> None:
    from vmprep.agent.steps.process import MSI_BUSY_DELAYS

    assert list(MSI_BUSY_DELAYS) == sorted(MSI_BUSY_DELAYS)
    assert 4 * 60 <= sum(MSI_BUSY_DELAYS) <= 10 * 60  # minutes, not forever
