"""Step kinds: one function per kind, in one module per family, imported when first needed."""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable
from pathlib import Path

from vmprep.agent.logs import Log
from vmprep.agent.platform.base import Platform, ProcResult
from vmprep.agent.secrets import Vault

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing is not imported at run time: it costs start-up time
    from typing import Any


class StepError(Exception):
    """A step that cannot be carried out as written (message is shown to people)."""


class Outcome:
    """What one attempt of a step gave. (Plain classes: `dataclasses` costs start-up time.)"""

    __slots__ = ("exit_code", "message", "ok", "output", "reboot")

    def __init__(
        self,
        ok: bool,
        exit_code: int | None = None,
        output: str = "",
        reboot: str | None = None,  # None | "continue" | "rerun"
        message: str | None = None,
    ) -> None:
        self.ok = ok
        self.exit_code = exit_code
        self.output = output
        self.reboot = reboot
        self.message = message


class StepContext:
    """What a step function gets besides its body."""

    def __init__(
        self,
        *,
        platform: Platform,
        vault: Vault,
        log: Log,
        state_dir: Path,
        timeout: float | None = None,
        variables: dict[str, Any] | None = None,
        names: dict[str, str] | None = None,  # role, instance_id
        options: dict[str, Any] | None = None,  # platform_options
        step_key: str = "",
    ) -> None:
        self.platform = platform
        self.vault = vault
        self.log = log
        self.state_dir = state_dir
        self.timeout = timeout
        self.variables = {} if variables is None else variables
        self.names = names or {}
        self.options = options or {}
        self.step_key = step_key  # `<source>-<id>` of the step running (file names, e.g. logs)

    def fill(self, template: str) -> str:
        """`{name}` placeholders from the variables (and role, instance_id, computer_name)."""
        values = {**self.names, **{k: str(v) for k, v in self.variables.items()}}

        def sub(match: re.Match[str]) -> str:
            name = match.group(1)
            if name not in values:
                raise StepError(f"unknown placeholder {{{name}}} in {template!r}")
            return values[name]

        return re.sub(r"\{([A-Za-z_][A-Za-z0-9_]*)\}", sub, template)


def from_process(result: ProcResult, ctx: StepContext, ok_codes: tuple[int, ...] = (0,)) -> Outcome:
    """The outcome of a process: 3010 reboot then continue, 3011 reboot then run again.

    POSIX exit statuses have 8 bits, so there the platform maps them to 3010 & 255, 3011 & 255.
    """
    if result.timed_out:
        why = f"timed out after {ctx.timeout:g}s; process tree killed"
        return Outcome(False, None, result.output, message=why)
    code = result.exit_code
    cont, rerun = ctx.platform.reboot_exit_codes
    if code == cont:
        return Outcome(True, code, result.output, reboot="continue")
    if code == rerun:
        return Outcome(True, code, result.output, reboot="rerun")
    if code in ok_codes:
        return Outcome(True, code, result.output)
    return Outcome(False, code, result.output, message=f"exit code {code}")


_FAMILIES = {
    "exec": "process",
    "cmd": "process",
    "powershell": "process",
    "msi": "process",
    "file": "files",
    "download": "files",
    "registry": "system",
    "windows_feature": "system",
    "service": "system",
    "env": "system",
    "rename_computer": "system",
    "join_domain": "system",
    "local_user": "system",
    "reboot": "control",
    "wait_for": "control",
}


def runner(kind: str) -> Callable[[Any, StepContext], Outcome]:
    module = importlib.import_module(f"vmprep.agent.steps.{_FAMILIES[kind]}")
    fn: Callable[[Any, StepContext], Outcome] = getattr(module, f"run_{kind}")
    return fn
