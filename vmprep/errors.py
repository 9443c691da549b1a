"""Expected failures and the exit codes they map to (DESIGN.md principle 7)."""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    OK = 0
    PROBLEMS = 1  # the input (a spec, a config repository) has errors
    USAGE = 2  # click's own usage errors
    PREFLIGHT = 3  # this machine cannot be sysprepped as asked
    EXTERNAL = 4  # an external tool (sysprep.exe, a server) failed
    SCHEMA = 5  # the database's schema is not this vmprep's (not upgraded yet, or newer)
    INTERNAL = 70  # a bug in vmprep
    INTERRUPTED = 130  # Ctrl-C


class VmprepError(Exception):
    """An expected failure: printed as one line plus an optional hint, never a traceback."""

    exit_code: ExitCode = ExitCode.PROBLEMS

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.hint = hint


class InputError(VmprepError):
    """The user's input (a spec, a secret reference, a config repository) is wrong."""

    exit_code = ExitCode.PROBLEMS


class UsageError(VmprepError):
    exit_code = ExitCode.USAGE


class PreflightError(VmprepError):
    exit_code = ExitCode.PREFLIGHT


class ExternalToolError(VmprepError):
    exit_code = ExitCode.EXTERNAL
