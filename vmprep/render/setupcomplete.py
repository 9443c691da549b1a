"""SetupComplete.cmd: a fixed launcher for the agent (DESIGN.md principle 1).

Windows runs `%WINDIR%\\Setup\\Scripts\\SetupComplete.cmd` as SYSTEM after Setup, before the
logon screen, and ignores its exit code. The only variable parts are three paths: the
interpreter, the install directory and (optionally) a chained script. Each is checked by
`vmprep.spec.winrules.setupcomplete_path_problem` before it gets here, and each is written inside
double quotes. No other spec value ever reaches this file: everything the user wrote travels in
agent.json.

It does not run the agent's job: `agent.pyz launch` registers the agent's startup task, starts
it and returns at once, so the logon screen is not held up and no reboot ever happens inside
SetupComplete.cmd (Microsoft: it cannot resume, and the system is left in a bad state).
`-I -S`: the agent is standard library only, so neither the environment nor `site` (and
whatever `.pth` files the image's interpreter has) gets a say, and start-up is shorter.
"""

from __future__ import annotations

from vmprep.spec.winrules import setupcomplete_path_problem

# Where `vmprep sysprep` moves a SetupComplete.cmd it finds on the reference VM (docs/internals.md)
CHAINED_SETUPCOMPLETE = "C:\\Windows\\Setup\\Scripts\\SetupComplete.vmprep-chained.cmd"
LOG_NAME = "setupcomplete.log"


def render_setupcomplete(
    python: str,
    install_dir: str,
    chain: str | None = None,
    *,
    name: str = "SetupComplete.cmd",
    delete_task: str | None = None,
) -> bytes:
    """The launcher, CRLF line endings (cmd.exe misparses labels and GOTO with bare LF).

    `name` is the launcher's own file name (a fixed vmprep constant, never a spec value), for
    its log line: SetupComplete.cmd, SetupComplete2.cmd (Azure) or firstboot.cmd.
    `delete_task` (a vmprep constant too) names the scheduled task that ran this launcher: once
    the agent launcher succeeds, the agent's own startup task takes over and this one goes."""
    if name not in ("SetupComplete.cmd", "SetupComplete2.cmd", "firstboot.cmd"):
        raise ValueError(f"unexpected launcher name {name!r}")  # a bug
    if delete_task is not None and not delete_task.replace("-", "").isalnum():
        raise ValueError(f"unexpected task name {delete_task!r}")  # a bug
    for value in (python, install_dir, chain):
        if value is not None and setupcomplete_path_problem(value) is not None:
            raise ValueError(f"unchecked path {value!r}")  # a bug: callers check first
    log = f'"{install_dir}\\{LOG_NAME}"'
    lines = [
        "@echo off",
        "rem Written by `vmprep render`; do not edit, render again instead.",
        "rem Hands the vmprep agent to its startup task (it runs outside Windows Setup, where",
        "rem it may reboot) and returns at once. Always exits 0: Windows ignores the exit code,",
        "rem and the agent itself reports how the setup went.",
        "setlocal EnableExtensions DisableDelayedExpansion",
        f"echo [%DATE% %TIME%] {name} started >> {log} 2>&1",
    ]
    if chain is not None:
        lines += [
            f'if not exist "{chain}" goto agent',
            f"echo [%DATE% %TIME%] running the chained script >> {log} 2>&1",
            # A child cmd.exe, so that an `exit` in the chained script cannot end this one.
            f'"%SystemRoot%\\System32\\cmd.exe" /d /s /c ""{chain}"" >> {log} 2>&1',
            f"echo [%DATE% %TIME%] the chained script exited with %ERRORLEVEL% >> {log} 2>&1",
            ":agent",
        ]
    lines += [
        f'if exist "{python}" goto run',
        f'echo [%DATE% %TIME%] error: the interpreter "{python}" is missing >> {log} 2>&1',
        "goto done",
        ":run",
        (
            f'"{python}" -I -S "{install_dir}\\agent.pyz" launch'
            f' --config "{install_dir}\\agent.json" >> {log} 2>&1'
        ),
        f"echo [%DATE% %TIME%] the agent launcher exited with %ERRORLEVEL% >> {log} 2>&1",
    ]
    if delete_task is not None:
        lines += [
            "if errorlevel 1 goto done",
            f'"%SystemRoot%\\System32\\schtasks.exe" /Delete /TN "{delete_task}" /F >> {log} 2>&1',
        ]
    lines += [
        ":done",
        "exit /b 0",
    ]
    return ("\r\n".join(lines) + "\r\n").encode("ascii")
