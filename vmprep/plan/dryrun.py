"""The agent's own run, dry: its engine, step code and Windows command builders, with every
process recorded instead of started (issue 16).

`dry_run` renders nothing itself: it takes agent.json as `render` writes it, runs the agent's
`Run` in a temporary state directory with the Windows platform whose `run` records the exact
argv (and the names, never the values, of the child's environment), answers the phone-home
fetch with the planned document instead of the network, and restarts the run after every
requested reboot — as the startup task would — until the agent says done, failed or halted.
So what `vmprep plan` shows is what the agent does, and a change to the agent changes the
plan with it.

Exit codes the recorder answers with: 0, except a rename or a domain join (3010: Windows
needs a restart for them) and `sc query` (a running service).
"""

from __future__ import annotations

import base64
import json
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

MAX_BOOTS = 20
NEEDS_RESTART = ("Add-Computer", "Rename-Computer")


@dataclass
class Command:
    step: str  # "baked:<id>", "remote:<id>", or "agent" (outside any step)
    boot: int
    argv: list[str]
    env: list[str]  # names only: values (secrets) never leave the child's environment
    script: str = ""  # a PowerShell -EncodedCommand or a cmd script, decoded for people
    action: str = ""  # what a step does in the agent's own process (no command line)
    raw: str = ""  # a command line the agent built as a string (msiexec's own quoting)

    @property
    def command_line(self) -> str:
        """The string Windows receives (CPython joins a list this way on Windows)."""
        import subprocess

        return self.action or self.raw or subprocess.list2cmdline(self.argv)


@dataclass
class DryRun:
    exit_code: int
    state: dict[str, Any]
    boots: int
    commands: list[Command] = field(default_factory=list)


class _Registry:
    """The `winreg` the recording platform gets: writes kept, reads answered from them."""

    HKEY_LOCAL_MACHINE, HKEY_CURRENT_USER, HKEY_USERS, HKEY_CLASSES_ROOT = 1, 2, 3, 4
    KEY_READ, KEY_WRITE, KEY_WOW64_64KEY, KEY_ALL_ACCESS = 0x20019, 0x20006, 0x100, 0xF003F
    REG_SZ, REG_EXPAND_SZ, REG_DWORD, REG_QWORD, REG_MULTI_SZ, REG_BINARY = 1, 2, 4, 11, 7, 3
    HWND_BROADCAST, WM_SETTINGCHANGE = 0xFFFF, 0x1A

    def __init__(self, record: Any = None) -> None:
        self.record = record  # called with a description of every write
        self.values: dict[str, tuple[Any, int]] = {
            # Windows Setup has finished on a booted instance.
            "HKLM\\SOFTWARE\\Microsoft\\Windows\\CurrentVersion\\Setup\\State\\ImageState": (
                "IMAGE_STATE_COMPLETE",
                1,
            ),
            "HKLM\\SYSTEM\\Setup\\Status\\SysprepStatus\\GeneralizationState": (7, 4),
        }
        self.sub = ""

    def CreateKeyEx(self, hive: Any, sub: str, reserved: int = 0, access: int = 0) -> Any:
        hives = {1: "HKLM", 2: "HKCU", 3: "HKU", 4: "HKCR"}
        self.sub = f"{hives.get(hive, hive)}\\{sub}"
        return self

    OpenKeyEx = CreateKeyEx
    OpenKey = CreateKeyEx

    def SetValueEx(self, key: Any, name: str, reserved: int, kind: int, value: Any) -> None:
        self.values[f"{self.sub}\\{name}"] = (value, kind)
        if self.record is not None:
            kinds = {1: "REG_SZ", 2: "REG_EXPAND_SZ", 4: "REG_DWORD", 11: "REG_QWORD"}
            kinds.update({7: "REG_MULTI_SZ", 3: "REG_BINARY"})
            self.record(f"set {self.sub}\\{name} = {value!r} ({kinds.get(kind, kind)})")

    def QueryValueEx(self, key: Any, name: str) -> tuple[Any, int]:
        try:
            return self.values[f"{self.sub}\\{name}"]
        except KeyError:
            raise FileNotFoundError(2, "not recorded", name) from None

    def DeleteValue(self, key: Any, name: str) -> None:
        self.values.pop(f"{self.sub}\\{name}", None)

    def CloseKey(self, key: Any) -> None:
        return None

    def __enter__(self) -> Any:
        return self

    def __exit__(self, *exc: object) -> None:
        return None


def _script(argv: list[str]) -> str:
    if "-EncodedCommand" in argv:
        encoded = argv[argv.index("-EncodedCommand") + 1]
        return base64.b64decode(encoded).decode("utf-16-le")
    for arg in argv:
        if arg.lower().endswith((".cmd", ".bat", ".ps1")) and Path(arg).is_file():
            return Path(arg).read_text(encoding="utf-8", errors="replace")
    return ""


def recording_platform(state_dir: Path, options: dict[str, Any], image_os: str, run: Any) -> Any:
    """The agent's WindowsPlatform, recording its processes; `run` is the plan's Run."""
    from vmprep.agent.platform.base import ProcResult
    from vmprep.agent.platform.winplatform import WindowsPlatform

    class Recording(WindowsPlatform):
        def __init__(self) -> None:
            super().__init__(state_dir, options, image_os, winreg=_Registry(self.write))
            self.commands: list[Command] = []
            self.boot = 1

        def write(self, what: str) -> None:
            self.commands.append(Command(run.running(), self.boot, [], [], action=what))

        def run(self, argv: Any, *, timeout: Any = None, env: Any = None, **kw: Any) -> Any:
            raw = argv if isinstance(argv, str) else ""
            args = (
                [str(a) for a in argv] if not raw else [raw.split('"')[1 if raw[0] == '"' else 0]]
            )
            script = _script(args)
            step = run.running()
            self.commands.append(Command(step, self.boot, args, sorted(env or {}), script, raw=raw))
            exe = args[0].lower().rsplit("\\", 1)[-1]
            if exe == "sc.exe" and "query" in args:
                return ProcResult(0, "STATE              : 4  RUNNING")
            if any(mark in script for mark in NEEDS_RESTART):
                return ProcResult(3010, "")
            return ProcResult(0, "")

        def boot_id(self) -> str | None:
            return str(self.boot)

        def same_boot(self, recorded: str | None, current: str) -> bool:
            return recorded == current

    return Recording()


# Kinds the agent carries out in its own process on the instance's file system and network:
# in a plan they are described, not done (a Windows path means nothing here, and a plan
# downloads nothing). `wait_for` on a service asks `sc.exe`, which is recorded like any process.
def _in_process(kind: str, body: dict[str, Any], ctx: Any) -> str | None:
    if kind == "file":
        size = len(str(body.get("content", "")).encode("utf-8"))
        return f"write {ctx.fill(body['path'])} ({size} bytes)"
    if kind == "download":
        return (
            f"download {ctx.fill(body['url'])} to {ctx.fill(body['to'])} (sha256 {body['sha256']})"
        )
    if kind == "wait_for" and "service" not in body:
        what = ", ".join(f"{k} {v}" for k, v in sorted(body.items()) if k != "interval")
        return f"wait for {what}"
    return None


def dry_run(
    agent_json: dict[str, Any],
    document: dict[str, Any] | None,
    *,
    instance_id: str,
    computer_name: str,
    mac: str | None = None,
    inputs: dict[str, Any] | None = None,
) -> DryRun:
    """Run the agent over `agent_json` until it stops rebooting; `document` is what the
    config service would send (None: nothing for this instance)."""
    from vmprep.agent.config import load_config
    from vmprep.agent.fetch import FetchOutcome
    from vmprep.agent.identity import Identity
    from vmprep.agent.logs import Log
    from vmprep.agent.run import Run
    from vmprep.agent.secrets import Vault

    with tempfile.TemporaryDirectory(prefix="vmprep-plan-") as tmp:
        state_dir = Path(tmp)
        config = state_dir / "agent.json"
        config.write_text(json.dumps(agent_json), encoding="utf-8")
        cfg = load_config(config)
        identity = Identity(instance_id, "plan", mac, computer_name)
        body = None if document is None else json.dumps(document).encode("utf-8")

        class PlanRun(Run):
            def __init__(self) -> None:
                super().__init__(cfg, state_dir, Vault(cfg.secrets), log)
                self.platform = platform

            def _identify(self) -> Any:
                return identity

            def _deploy_inputs(self) -> Any:
                if inputs is not None and self.state.get("inputs") is None:
                    self.state["inputs"] = inputs  # what the facts say the platform says
                return super()._deploy_inputs()

            def _prepare_reporter(self) -> None:
                return None  # nothing is sent anywhere

            def _fetch(self, ph: dict[str, Any]) -> Any:
                if document is None or body is None:
                    return FetchOutcome("none", message="plan: no document for this instance")
                import hashlib

                return FetchOutcome("document", document, hashlib.sha256(body).hexdigest())

        log = Log(state_dir / "logs", level="info", redact=Vault(cfg.secrets).redact, echo=None)
        holder: dict[str, Any] = {}
        current = _Current(holder)
        platform = recording_platform(state_dir, cfg.platform_options, cfg.os, current)
        from vmprep.agent import engine as engine_module
        from vmprep.agent.steps import Outcome
        from vmprep.agent.steps import runner as real_runner

        def runner(kind: str) -> Any:
            real = real_runner(kind)

            def step(body: Any, ctx: Any) -> Any:
                described = _in_process(kind, body, ctx)
                if described is None:
                    return real(body, ctx)
                key = current.running()
                platform.commands.append(Command(key, platform.boot, [], [], action=described))
                return Outcome(True, 0, described)

            return step

        code, boots, state = 2, 0, {}
        # The engine looks its step functions up by name; for the dry run only, the ones that
        # act in-process are described instead (restored before this returns).
        engine_module.runner = runner  # type: ignore[attr-defined]
        try:
            while code == 2 and boots < MAX_BOOTS:
                boots += 1
                platform.boot = boots
                plan_run = PlanRun()
                holder["run"] = plan_run
                code = plan_run.execute()
                state = plan_run.state
        finally:
            engine_module.runner = real_runner  # type: ignore[attr-defined]
        on_instance = _OnInstance(state_dir, str(agent_json.get("install_dir") or "C:\\vmprep"))
        for c in platform.commands:
            c.argv = [on_instance(a) for a in c.argv]
            c.script, c.action = on_instance(c.script), on_instance(c.action)
            c.raw = on_instance(c.raw)
        return DryRun(code, state, boots, platform.commands)


class _OnInstance:
    """Paths under the dry run's state directory, as they are on the instance (install_dir)."""

    def __init__(self, state_dir: Path, install_dir: str) -> None:
        import re

        self.root = str(state_dir)
        self.pattern = re.compile(re.escape(self.root) + r"[^\s\"']*")
        self.install_dir = install_dir.rstrip("\\")

    def __call__(self, text: str) -> str:
        def windows(match: Any) -> str:
            tail: str = match.group(0)[len(self.root) :]
            return self.install_dir + tail.replace("/", "\\")

        return self.pattern.sub(windows, text)


class _Current:
    """What the recorder asks for the running step: the Run of the current boot."""

    def __init__(self, holder: dict[str, Any]) -> None:
        self.holder = holder

    def running(self) -> str:
        """The key of the step running now, or "agent" outside any step."""
        run = self.holder.get("run")
        steps = {} if run is None else run.state.get("steps", {})
        return next((k for k, r in steps.items() if r["status"] == "running"), "agent")
