"""The agent's Windows platform: every action is an argv (never a shell string) or a winreg call.

Values reach PowerShell only as single-quoted literals (`ps_quote`) or through the child's
environment; secrets only through the environment of that one child, never in an argv, so
they cannot show up in a process list or an audit log. Tests assert each argv exactly.
"""

from __future__ import annotations

import base64
import contextlib
import os
import subprocess
from collections.abc import Mapping
from pathlib import Path

from vmprep.agent.platform.base import Platform, ProcResult
from vmprep.agent.platform.msiexec import msi_command_line
from vmprep.agent.platform.winenv import MACHINE_KEY
from vmprep.agent.platform.winsys import resolve_argv, system_program
from vmprep.agent.stepcheck import KINDS

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing is not imported at run time: it costs start-up time
    from typing import Any

POWERSHELL = "powershell.exe"
MSIEXEC = "msiexec.exe"
TASK_NAME = "vmprep-agent"
TASK_XML = "startup-task.xml"
TASK_DESCRIPTION = "vmprep first-boot agent: runs at startup until its work is done"
REBOOT_EXIT = 3010
CREATE_NEW_PROCESS_GROUP, CREATE_SUSPENDED = 0x200, 0x4
BOOT_TOLERANCE = 10  # seconds
_QUOTES = "'\u2018\u2019\u201a\u201b"
_START_TYPES = {
    "automatic": "auto",
    "delayed": "delayed-auto",
    "manual": "demand",
    "disabled": "disabled",
}
_HIVES = {
    "HKLM": "HKEY_LOCAL_MACHINE",
    "HKCU": "HKEY_CURRENT_USER",
    "HKU": "HKEY_USERS",
    "HKCR": "HKEY_CLASSES_ROOT",
}
ENV_KEY = MACHINE_KEY


def ps_quote(value: str) -> str:
    """A PowerShell single-quoted literal: every kind of single quote doubled."""
    return "'" + "".join(c + c if c in _QUOTES else c for c in value) + "'"


POWERSHELL_FLAGS = ["-NoProfile", "-NonInteractive", "-ExecutionPolicy", "Bypass"]
# A Windows command line holds 32,767 characters; longer scripts go through a file.
MAX_ENCODED = 30_000


def powershell_argv(script: str) -> list[str]:
    encoded = base64.b64encode(script.encode("utf-16-le")).decode("ascii")
    return [POWERSHELL, *POWERSHELL_FLAGS, "-EncodedCommand", encoded]


def cmd_argv(path: str) -> list[str]:
    return ["cmd.exe", "/d", "/q", "/c", path]


def powershell_file_argv(path: str) -> list[str]:
    return [POWERSHELL, *POWERSHELL_FLAGS, "-File", path]


def feature_script(names: list[str], state: str, management_tools: bool, server: bool) -> str:
    quoted = ",".join(ps_quote(n) for n in names)
    if server:
        verb = "Install-WindowsFeature" if state == "present" else "Uninstall-WindowsFeature"
        tools = " -IncludeManagementTools" if management_tools and state == "present" else ""
        return (
            "$ErrorActionPreference = 'Stop'\n"
            f"$r = {verb} -Name @({quoted}){tools}\n"
            "if (-not $r.Success) { exit 1 }\n"
            f"if ($r.RestartNeeded -eq 'Yes') {{ exit {REBOOT_EXIT} }}\n"
            "exit 0\n"
        )
    verb = (
        "Enable-WindowsOptionalFeature" if state == "present" else "Disable-WindowsOptionalFeature"
    )
    extra = " -All" if state == "present" else ""
    return (
        "$ErrorActionPreference = 'Stop'\n"
        f"$r = {verb} -Online -FeatureName @({quoted}){extra} -NoRestart\n"
        f"if ($r.RestartNeeded) {{ exit {REBOOT_EXIT} }}\n"
        "exit 0\n"
    )


def rename_script(name: str) -> str:
    return (
        "$ErrorActionPreference = 'Stop'\n"
        f"if ($env:COMPUTERNAME -eq {ps_quote(name)}) {{ exit 0 }}\n"
        f"Rename-Computer -NewName {ps_quote(name)} -Force\n"
        f"exit {REBOOT_EXIT}\n"
    )


def join_script(domain: str, ou: str | None, new_name: str | None = None) -> str:
    """Reads the credential from the child's environment and removes it there at once.

    With `new_name`: rename and join in one `Add-Computer -NewName … -Options
    JoinWithNewName,AccountCreate` call and one restart (Microsoft's Add-Computer reference,
    https://learn.microsoft.com/powershell/module/microsoft.powershell.management/add-computer;
    `-Options` replaces the default AccountCreate, so it is named too). Already named and
    joined: nothing to do. A member of the domain under another name is renamed with the
    domain credential, which renaming a domain member needs (NetRenameMachineInDomain,
    https://learn.microsoft.com/en-us/windows/win32/api/lmjoin/nf-lmjoin-netrenamemachineindomain).
    """
    ou_arg = f" -OUPath {ps_quote(ou)}" if ou else ""
    lines = [
        "$ErrorActionPreference = 'Stop'",
        "$user = $env:VMPREP_JOIN_USER",
        "$pass = ConvertTo-SecureString $env:VMPREP_JOIN_PASSWORD -AsPlainText -Force",
        "Remove-Item Env:VMPREP_JOIN_PASSWORD, Env:VMPREP_JOIN_USER",
        "$cs = Get-CimInstance Win32_ComputerSystem",
        f"$joined = $cs.PartOfDomain -and $cs.Domain -eq {ps_quote(domain)}",
    ]
    join = f"Add-Computer -DomainName {ps_quote(domain)}{ou_arg} -Credential $cred -Force"
    if new_name is None:
        lines.append("if ($joined) { exit 0 }")
    else:
        name = ps_quote(new_name)
        lines.append(f"$named = $env:COMPUTERNAME -eq {name}")
        lines.append("if ($joined -and $named) { exit 0 }")
    lines.append("$cred = New-Object System.Management.Automation.PSCredential($user, $pass)")
    if new_name is not None:
        lines.append(
            f"if ($joined) {{ Rename-Computer -NewName {name} -DomainCredential $cred -Force; "
            f"exit {REBOOT_EXIT} }}"
        )
        lines.append(f"if ($named) {{ {join}; exit {REBOOT_EXIT} }}")
        join = (
            f"Add-Computer -DomainName {ps_quote(domain)}{ou_arg} -NewName {name} "
            "-Options JoinWithNewName,AccountCreate -Credential $cred -Force"
        )
    lines.append(join)
    lines.append(f"exit {REBOOT_EXIT}")
    return "\n".join(lines) + "\n"


def local_user_script(body: Mapping[str, Any], has_password: bool) -> str:
    name = ps_quote(str(body["name"]))
    if body.get("state", "present") == "absent":
        return (
            "$ErrorActionPreference = 'Stop'\n"
            f"if (Get-LocalUser -Name {name} -ErrorAction SilentlyContinue) {{ Remove-LocalUser -Name {name} }}\n"
            "exit 0\n"
        )
    lines = ["$ErrorActionPreference = 'Stop'"]
    opts = ""
    if has_password:
        lines.append("$pass = ConvertTo-SecureString $env:VMPREP_USER_PASSWORD -AsPlainText -Force")
        lines.append("Remove-Item Env:VMPREP_USER_PASSWORD")
        opts += " -Password $pass"
    else:
        opts += " -NoPassword"
    if "full_name" in body:
        opts += f" -FullName {ps_quote(str(body['full_name']))}"
    if "description" in body:
        opts += f" -Description {ps_quote(str(body['description']))}"
    never = " -PasswordNeverExpires" if body.get("password_never_expires") else ""
    set_opts = opts.replace(" -NoPassword", "")
    lines.append(f"if (Get-LocalUser -Name {name} -ErrorAction SilentlyContinue) {{")
    lines.append(
        f"  Set-LocalUser -Name {name}{set_opts}{' -PasswordNeverExpires $true' if never else ''}"
    )
    lines.append(f"}} else {{ New-LocalUser -Name {name}{opts}{never} | Out-Null }}")
    lines.extend(
        f"if (-not (Get-LocalGroupMember -Group {ps_quote(g)} -Member {name} "
        f"-ErrorAction SilentlyContinue)) {{ Add-LocalGroupMember -Group {ps_quote(g)} -Member {name} }}"
        for g in body.get("groups", [])
    )
    lines.append("exit 0")
    return "\n".join(lines) + "\n"


def service_argvs(body: Mapping[str, Any]) -> list[list[str]]:
    name = str(body["name"])
    argvs = []
    if "start_type" in body:
        argvs.append(["sc.exe", "config", name, "start=", _START_TYPES[body["start_type"]]])
    if body.get("state") == "running":
        argvs.append(["sc.exe", "start", name])
    elif body.get("state") == "stopped":
        argvs.append(["sc.exe", "stop", name])
    return argvs


# sc.exe: 1056 = already running, 1062 = not started: the wanted state holds already.
_SC_OK = {0, 1056, 1062}


def reboot_argv(reason: str) -> list[str]:
    return ["shutdown.exe", "/r", "/t", "5", "/c", reason[:500] or "vmprep agent"]


def create_task_argv(xml_path: str) -> list[str]:
    """Register (or replace: /F) the startup task from its XML definition (taskxml.py)."""
    return ["schtasks.exe", "/Create", "/XML", xml_path, "/TN", TASK_NAME, "/F"]


def query_task_argv() -> list[str]:
    return ["schtasks.exe", "/Query", "/TN", TASK_NAME]


def run_task_argv() -> list[str]:
    return ["schtasks.exe", "/Run", "/TN", TASK_NAME]


def remove_task_argv() -> list[str]:
    return ["schtasks.exe", "/Delete", "/TN", TASK_NAME, "/F"]


def kill_tree_argv(pid: int) -> list[str]:
    return ["taskkill.exe", "/PID", str(pid), "/T", "/F"]


def registry_value(reg_type: str, value: Any) -> Any:
    """The Python value winreg.SetValueEx takes for a registry type."""
    if reg_type in ("REG_DWORD", "REG_QWORD"):
        number = int(value)
        limit = 2**32 if reg_type == "REG_DWORD" else 2**64
        if not 0 <= number < limit:
            raise ValueError(f"{value!r} does not fit {reg_type}")
        return number
    if reg_type == "REG_MULTI_SZ":
        return [str(v) for v in (value if isinstance(value, list) else [value])]
    if reg_type == "REG_BINARY":
        return bytes.fromhex(str(value))
    if isinstance(value, (list, dict)):
        raise TypeError(f"{reg_type} takes a string")
    return str(value)


def split_key(key: str) -> tuple[str, str]:
    hive, _, sub = key.partition("\\")
    return _HIVES.get(hive, hive), sub


class WindowsPlatform(Platform):
    name = "windows"
    kinds = frozenset(KINDS)  # every kind

    def __init__(
        self,
        state_dir: Path,
        options: Mapping[str, Any],
        image_os: str = "",
        cloud: str = "generic",
        *,
        winreg: Any = None,
    ) -> None:
        super().__init__(state_dir, options, image_os, cloud)
        self._winreg = winreg
        self._process_env: dict[str, str | None] = {}

    @property
    def winreg(self) -> Any:
        if self._winreg is None:
            import winreg

            self._winreg = winreg
        return self._winreg

    @property
    def server(self) -> bool:
        return self.image_os.startswith("windows-server")

    def popen_kwargs(self) -> dict[str, Any]:
        # Created suspended: `adopt` resumes the child once it is in its Job Object.
        return {"creationflags": CREATE_NEW_PROCESS_GROUP | CREATE_SUSPENDED}

    def adopt(self, proc: subprocess.Popen[bytes]) -> None:
        from vmprep.agent.platform.winjob import Job, resume_process

        try:
            job: Any = Job()
        except OSError:
            job = None  # no Job Objects here: `taskkill /T` it is, on a timeout
        if job is not None:
            try:
                job.adopt(proc.pid)  # resumes the child whatever happens
            except OSError:
                job.close()
                job = None
        elif resume_process(proc.pid) == 0:
            raise OSError(f"cannot resume process {proc.pid} created suspended")
        proc.vmprep_job = job  # type: ignore[attr-defined]

    def kill_tree(self, proc: subprocess.Popen[bytes]) -> None:
        job = getattr(proc, "vmprep_job", None)
        if job is not None:
            try:
                job.terminate()
            except OSError:
                job = None
        if job is None:
            argv = resolve_argv(kill_tree_argv(proc.pid))
            subprocess.run(argv, capture_output=True, check=False)
        proc.kill()

    def release(self, proc: subprocess.Popen[bytes]) -> None:
        job = getattr(proc, "vmprep_job", None)
        if job is not None:
            proc.vmprep_job = None  # type: ignore[attr-defined]
            with contextlib.suppress(OSError):
                job.release()

    def run(
        self,
        argv: list[str] | str,
        *,
        timeout: float | None = None,
        env: Mapping[str, str] | None = None,
        cwd: str | None = None,
        stdin: bytes | None = None,
    ) -> ProcResult:
        """A system program named bare (`sc.exe`) runs from the system directory, never from
        PATH (`winsys`); a command line string names its program itself (msi: by path)."""
        if not isinstance(argv, str):
            argv = resolve_argv(argv)
        return super().run(argv, timeout=timeout, env=env, cwd=cwd, stdin=stdin)

    def cmd(self, script: str, *, timeout: float | None) -> ProcResult:
        """cmd.exe runs a script file (a script in its command line has quoting rules), written
        in the code page cmd.exe reads it in (`codepage`): ValueError for a character outside."""
        from vmprep.protocol.codepage import encode_script

        data = encode_script(script, self.cmd_code_page())
        return self.run_script_file(data, ".cmd", cmd_argv, timeout=timeout)

    def cmd_code_page(self) -> int:
        """The console's code page, which a child cmd.exe inherits, else the OEM code page;
        437 (the en-US OEM code page) off Windows, where only argvs are built."""
        import ctypes

        kernel32 = getattr(ctypes, "windll", None)
        if kernel32 is None:
            return 437
        k = kernel32.kernel32
        return int(k.GetConsoleOutputCP()) or int(k.GetOEMCP())

    def powershell(
        self, script: str, *, timeout: float | None, env: Mapping[str, str] | None = None
    ) -> ProcResult:
        argv = powershell_argv(script)
        if len(argv[-1]) <= MAX_ENCODED:
            return self.run(argv, timeout=timeout, env=env)
        data = b"\xef\xbb\xbf" + script.encode("utf-8")  # with a BOM: PowerShell 5.1 reads UTF-8
        return self.run_script_file(data, ".ps1", powershell_file_argv, timeout=timeout, env=env)

    def msi(
        self,
        body: Mapping[str, Any],
        properties: Mapping[str, str],
        log_path: str,
        *,
        timeout: float | None,
        secret_names: frozenset[str] = frozenset(),
    ) -> ProcResult:
        """msiexec gets its command line as one string, quoted by its own rules (msiexec.py)."""
        line = msi_command_line(
            system_program(MSIEXEC) or MSIEXEC,
            str(body["path"]),
            properties,
            log_path,
            state=body.get("state", "present"),
            secret_names=secret_names,
        )
        return self.run(line, timeout=timeout)

    def windows_feature(self, body: Mapping[str, Any], *, timeout: float | None) -> ProcResult:
        script = feature_script(
            list(body["names"]),
            body.get("state", "present"),
            bool(body.get("include_management_tools", False)),
            self.server,
        )
        return self.powershell(script, timeout=timeout)

    def service(self, body: Mapping[str, Any], *, timeout: float | None) -> ProcResult:
        outputs = []
        for argv in service_argvs(body):
            result = self.run(argv, timeout=timeout)
            outputs.append(result.output)
            if result.exit_code not in _SC_OK:
                return ProcResult(result.exit_code, "".join(outputs), result.timed_out)
        return ProcResult(0, "".join(outputs))

    def service_running(self, name: str) -> bool:
        result = self.run(["sc.exe", "query", name], timeout=30)
        return result.exit_code == 0 and "RUNNING" in result.output

    def rename_computer(self, name: str, *, timeout: float | None) -> ProcResult:
        return self.powershell(rename_script(name), timeout=timeout)

    def join_domain(
        self,
        domain: str,
        ou: str | None,
        user: str,
        password: str,
        *,
        timeout: float | None,
        new_name: str | None = None,
    ) -> ProcResult:
        env = {"VMPREP_JOIN_USER": user, "VMPREP_JOIN_PASSWORD": password}
        return self.powershell(join_script(domain, ou, new_name), timeout=timeout, env=env)

    def local_user(
        self, body: Mapping[str, Any], password: str | None, *, timeout: float | None
    ) -> ProcResult:
        env = None if password is None else {"VMPREP_USER_PASSWORD": password}
        return self.powershell(
            local_user_script(body, password is not None), timeout=timeout, env=env
        )

    def registry(self, body: Mapping[str, Any], value: Any) -> str:
        wr = self.winreg
        hive_name, sub = split_key(str(body["key"]))
        hive = getattr(wr, hive_name)
        access = wr.KEY_WRITE | wr.KEY_WOW64_64KEY
        name = str(body["name"])
        if body.get("state", "present") == "absent":
            try:
                with wr.OpenKeyEx(hive, sub, 0, access) as key:
                    wr.DeleteValue(key, name)
            except FileNotFoundError:
                return f"{body['key']}\\{name} already absent"
            return f"{body['key']}\\{name} removed"
        reg_type = body.get("type", "REG_SZ")
        with wr.CreateKeyEx(hive, sub, 0, access) as key:
            wr.SetValueEx(key, name, 0, getattr(wr, reg_type), registry_value(reg_type, value))
        return f"{body['key']}\\{name} set ({reg_type})"

    def set_env(self, name: str, value: str | None, scope: str, mode: str = "set") -> str:
        message = super().set_env(name, value, scope, mode)
        if scope == "process":  # kept over the registry's value when the block is rebuilt
            self._process_env[name] = os.environ.get(name)
        return message

    def persist_env(self, name: str, value: str | None, mode: str = "set") -> str:
        """The machine value in the registry (its type kept), then this run's environment
        rebuilt as a new process would get it, and WM_SETTINGCHANGE broadcast (#19)."""
        from vmprep.agent import envvars
        from vmprep.agent.platform import winenv

        wr = self.winreg
        current, kind = winenv.read_value(wr, name)
        if value is not None and mode != "set":
            value = envvars.edit_list(current, value, mode, ";")
        if value is None:
            if current is None and kind is None:
                return f"{name} already absent for the machine"
            winenv.write_value(wr, name, None)
            os.environ.pop(name, None)
            message = f"{name} removed for the machine"
        else:
            new_kind = winenv.value_kind(wr, value, kind)
            if value == current and new_kind == kind:
                return f"{name} already set for the machine"
            winenv.write_value(wr, name, value, new_kind)
            message = f"{name} set for the machine"
        self.refresh_environment()
        if not self.broadcast():
            message += " (WM_SETTINGCHANGE could not be broadcast)"
        return message

    def refresh_environment(self) -> None:
        """This process's environment, which later steps inherit, rebuilt from the registry as
        Windows builds a new process's block: machine then user values, REG_EXPAND_SZ expanded,
        Path = machine Path then user Path; process-scope `env` steps stay on top."""
        from vmprep.agent.envvars import build_block
        from vmprep.agent.platform import winenv

        wr = self.winreg
        machine = winenv.read_scope(wr, wr.HKEY_LOCAL_MACHINE, winenv.MACHINE_KEY)
        user = winenv.read_scope(wr, wr.HKEY_CURRENT_USER, winenv.USER_KEY)
        block = build_block(dict(os.environ), machine, user)
        for name, value in block.items():
            if os.environ.get(name) != value:
                os.environ[name] = value
        for name, kept in self._process_env.items():
            if kept is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = kept

    def broadcast(self) -> bool:
        from vmprep.agent.platform.winenv import broadcast_change

        return broadcast_change()

    def reboot(self, reason: str) -> ProcResult:
        return self.run(reboot_argv(reason), timeout=60)

    def install_startup_task(self, config_path: Path, *, replace: bool = True) -> ProcResult | None:
        if not replace:
            # `run` inside the task that `launch` registered: re-creating a task (/Create /F)
            # while it runs is not something to rely on, and it is already there.
            query = self.run(query_task_argv(), timeout=60)
            if query.exit_code == 0:
                return query
        from vmprep.agent.platform.taskxml import task_action, task_xml

        command, arguments = task_action(self.agent_argv(config_path))
        xml = task_xml(command, arguments, str(config_path.parent), TASK_DESCRIPTION)
        # Kept beside the state (no secret in it): what was registered, for whoever debugs it.
        from vmprep.protocol.atomic import atomic_write

        path = self.state_dir / TASK_XML
        self.state_dir.mkdir(parents=True, exist_ok=True)
        atomic_write(path, xml)
        return self.run(create_task_argv(str(path)), timeout=60)

    def remove_startup_task(self) -> ProcResult | None:
        return self.run(remove_task_argv(), timeout=60)

    def start_agent(self, config_path: Path) -> ProcResult:
        """The startup task, started now: `run` goes on in the Task Scheduler's process tree,
        outside Windows Setup (config_path is already in the registered task)."""
        return self.run(run_task_argv(), timeout=60)

    setup_name = "Windows Setup"

    def setup_pending(self) -> str | None:
        from vmprep.agent.platform.winready import setup_pending

        return setup_pending(self.winreg)

    def cloud_pending(self) -> str | None:
        from vmprep.agent.platform.winready import cloud_pending

        return cloud_pending(
            self.cloud, lambda argv: self.run(argv, timeout=60), self.service_running
        )

    def boot_id(self) -> str | None:
        """The boot time in whole seconds: now minus the uptime (GetTickCount64)."""
        import ctypes
        import time

        ticks = ctypes.windll.kernel32.GetTickCount64  # type: ignore[attr-defined]
        ticks.restype = ctypes.c_ulonglong
        return str(int(time.time() - ticks() / 1000.0))

    def same_boot(self, recorded: str | None, current: str) -> bool:
        """Boot times computed at two moments differ by the clock's jitter, not by a reboot
        (which takes far longer than this tolerance); a clock step (NTP) is also absorbed."""
        try:
            return recorded is not None and abs(int(recorded) - int(current)) <= BOOT_TOLERANCE
        except ValueError:
            return False
