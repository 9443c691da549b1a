"""The platform interface, and running a child process with a timeout that kills its tree."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable, Mapping
from pathlib import Path

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing is not imported at run time: it costs start-up time
    from typing import Any

TAIL_BYTES = 4096
NT = os.name == "nt"  # Windows compares variable names and Path entries without case


class NotSupported(Exception):
    """A step kind (or variant) this platform cannot do."""


class ProcResult:
    __slots__ = ("exit_code", "output", "timed_out")

    def __init__(self, exit_code: int | None, output: str, timed_out: bool = False) -> None:
        self.exit_code = exit_code  # None: killed on timeout
        self.output = output  # the last TAIL_BYTES of stdout+stderr, decoded
        self.timed_out = timed_out

    def __repr__(self) -> str:
        return f"ProcResult({self.exit_code!r}, timed_out={self.timed_out})"


def _tail(chunks: list[bytes]) -> str:
    data = b"".join(chunks)[-TAIL_BYTES:]
    start = 0
    while start < min(3, len(data)) and data[start] & 0xC0 == 0x80:  # a cut UTF-8 sequence
        start += 1
    return data[start:].decode("utf-8", "replace")


class Platform:
    """One implementation per OS. Windows builds argv lists (tests assert them exactly)."""

    name = "base"
    #: step kinds this platform can run
    kinds: frozenset[str] = frozenset()
    #: exit codes meaning "reboot, then continue" and "reboot, then run this step again"
    reboot_exit_codes: tuple[int, int] = (3010, 3011)

    def __init__(
        self,
        state_dir: Path,
        options: Mapping[str, Any],
        image_os: str = "",
        cloud: str = "generic",
    ) -> None:
        self.state_dir = state_dir
        self.options = dict(options)
        self.image_os = image_os
        self.cloud = cloud  # agent.json's image.platform: generic, hyperv, vmware, azure, ...

    # -- what can run here ---------------------------------------------------------------------
    def unsupported(self, kind: str, body: Any) -> str | None:
        """Why this step cannot run on this platform, or None."""
        if kind not in self.kinds:
            return f"{kind!r} steps are not supported on this platform ({self.name})"
        return None

    # -- processes -----------------------------------------------------------------------------
    def popen_kwargs(self) -> dict[str, Any]:
        raise NotImplementedError

    def kill_tree(self, proc: subprocess.Popen[bytes]) -> None:
        raise NotImplementedError

    def adopt(self, proc: subprocess.Popen[bytes]) -> None:
        """Called as soon as a child exists (Windows: put it in a Job Object, then resume it)."""

    def release(self, proc: subprocess.Popen[bytes]) -> None:
        """Called once the child has ended (or was killed)."""

    def run(
        self,
        argv: list[str] | str,
        *,
        timeout: float | None = None,
        env: Mapping[str, str] | None = None,
        cwd: str | None = None,
        stdin: bytes | None = None,
    ) -> ProcResult:
        """Run argv (no shell), keep the output's tail, kill the whole tree on timeout.

        A string is a Windows command line passed to CreateProcess as it is (for programs
        that parse their own command line, like msiexec)."""
        import threading
        from collections import deque

        child_env = None if env is None else {**os.environ, **env}
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env=child_env,
            cwd=cwd,
            **self.popen_kwargs(),
        )
        try:
            self.adopt(proc)
        except BaseException:
            proc.kill()
            proc.wait()
            if proc.stdout is not None:
                proc.stdout.close()
            raise
        chunks: deque[bytes] = deque()
        size = [0]

        abandoned = threading.Event()

        def pump() -> None:
            assert proc.stdout is not None
            while data := proc.stdout.read1(65536):  # type: ignore[attr-defined]
                chunks.append(data)
                size[0] += len(data)
                while size[0] - len(chunks[0]) >= TAIL_BYTES:
                    size[0] -= len(chunks.popleft())
            if abandoned.is_set():
                proc.stdout.close()

        reader = threading.Thread(target=pump, daemon=True)
        reader.start()
        if stdin is not None:
            assert proc.stdin is not None
            try:
                proc.stdin.write(stdin)
                proc.stdin.close()
            except BrokenPipeError:
                pass
        timed_out = False
        try:
            code: int | None = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill_tree(proc)
            proc.wait()
            code, timed_out = None, True
        finally:
            self.release(proc)
        # A background process the step started may keep the pipe open: do not wait for it
        # (and do not close the pipe under the reader, which would block on its lock).
        reader.join(timeout=1)
        abandoned.set()  # from here on, the reader closes the pipe when it is done
        if proc.stdout is not None and not reader.is_alive():
            proc.stdout.close()
        return ProcResult(code, _tail(list(chunks)), timed_out=timed_out)

    # -- shells --------------------------------------------------------------------------------
    def cmd(self, script: str, *, timeout: float | None) -> ProcResult:
        """A `cmd` step: cmd.exe on Windows, /bin/sh elsewhere."""
        raise NotImplementedError

    def run_script_file(
        self,
        data: bytes,
        suffix: str,
        argv_for: Callable[[str], list[str]],
        *,
        timeout: float | None,
        env: Mapping[str, str] | None = None,
    ) -> ProcResult:
        """Write a script to a private temporary file in state_dir/tmp, run it, remove it."""
        import tempfile

        tmp_dir = self.state_dir / "tmp"
        tmp_dir.mkdir(parents=True, exist_ok=True)
        fd, path = tempfile.mkstemp(suffix=suffix, dir=tmp_dir)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            return self.run(argv_for(path), timeout=timeout, env=env)
        finally:
            os.unlink(path)

    # -- OS actions: each returns (exit_code, output) or raises NotSupported -------------------
    def powershell(
        self, script: str, *, timeout: float | None, env: Mapping[str, str] | None = None
    ) -> ProcResult:
        raise NotSupported("powershell")

    def msi(
        self,
        body: Mapping[str, Any],
        properties: Mapping[str, str],
        log_path: str,
        *,
        timeout: float | None,
        secret_names: frozenset[str] = frozenset(),
    ) -> ProcResult:
        """Install (state present) or remove the package; `secret_names`: properties whose
        values are secrets (kept out of msiexec's log)."""
        raise NotSupported("msi")

    def registry(self, body: Mapping[str, Any], value: Any) -> str:
        raise NotSupported("registry")

    def windows_feature(self, body: Mapping[str, Any], *, timeout: float | None) -> ProcResult:
        raise NotSupported("windows_feature")

    def service(self, body: Mapping[str, Any], *, timeout: float | None) -> ProcResult:
        raise NotSupported("service")

    def set_env(self, name: str, value: str | None, scope: str, mode: str = "set") -> str:
        """Set (value None: remove) for this run and its children; `machine` scope persists.
        `mode` append/prepend/remove edits a list variable (`Path`) by entry (`envvars`)."""
        if scope != "process":
            return self.persist_env(name, value, mode)
        if value is not None and mode != "set":
            from vmprep.agent.envvars import edit_list

            value = edit_list(os.environ.get(name), value, mode, os.pathsep, ignore_case=NT)
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
        return f"{name} {'set' if value is not None else 'removed'} for this run"

    def persist_env(self, name: str, value: str | None, mode: str = "set") -> str:
        """Set the variable for the machine, and for this run and its children."""
        raise NotSupported("env")

    def rename_computer(self, name: str, *, timeout: float | None) -> ProcResult:
        raise NotSupported("rename_computer")

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
        """Join `domain`; with `new_name`, under that name in the same operation."""
        raise NotSupported("join_domain")

    def local_user(
        self, body: Mapping[str, Any], password: str | None, *, timeout: float | None
    ) -> ProcResult:
        raise NotSupported("local_user")

    def service_running(self, name: str) -> bool:
        raise NotSupported("wait_for.service")

    # -- before a step that may reboot (readiness.py) ----------------------------------------------
    setup_name = "the system's first-boot setup"

    def setup_pending(self) -> str | None:
        """Why the OS's own setup has not finished (a reboot now would break it), or None."""
        return None

    def cloud_pending(self) -> str | None:
        """Why the cloud's provisioning agent is not done with this instance, or None."""
        return None

    # -- boot, reboot, startup task --------------------------------------------------------------
    def boot_id(self) -> str | None:
        """Something that changes with every boot, or None when unknown."""
        return None

    def same_boot(self, recorded: str | None, current: str) -> bool:
        return recorded == current

    def reboot(self, reason: str) -> ProcResult:
        raise NotImplementedError

    def install_startup_task(self, config_path: Path, *, replace: bool = True) -> ProcResult | None:
        """Register the agent to start at boot; with replace=False keep one already there."""
        raise NotImplementedError

    def remove_startup_task(self) -> ProcResult | None:
        raise NotImplementedError

    def start_agent(self, config_path: Path) -> ProcResult:
        """Start `run` now, outside this process, and return without waiting for it (`launch`).
        Raises OSError, or answers a non-zero exit code, when it could not be started."""
        raise NotImplementedError

    #: agent.json's `runtime.python`: the interpreter SetupComplete.cmd starts (use_interpreter)
    interpreter: str | None = None

    def use_interpreter(self, python: str | None) -> None:
        """Register the startup task with `python` (agent.json's `runtime.python`, e.g. the
        bundled `<install_dir>\\python\\python.exe`) rather than whatever runs this process."""
        self.interpreter = python

    def agent_argv(self, config_path: Path) -> list[str]:
        """How the startup task starts this agent again: with agent.json's interpreter when
        that file exists here, else with the one running now."""
        import sys

        flags = [f for f, on in (("-I", sys.flags.isolated), ("-S", sys.flags.no_site)) if on]
        script = sys.argv[0] if sys.argv and sys.argv[0].endswith(".pyz") else None
        entry = [script] if script else ["-m", "vmprep.agent"]
        python = self.interpreter
        if not python or not os.path.isfile(python):
            python = sys.executable
        return [python, *flags, *entry, "run", "--config", str(config_path)]
