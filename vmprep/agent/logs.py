"""The agent's log: timestamped lines in state_dir/logs/agent.log, rotated by size, redacted.

A small writer instead of `logging` keeps the boot path lean; every line goes through the
redactor, so no secret value the agent knows reaches the disk.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

from vmprep.protocol.timestamps import format_rfc3339

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing is not imported at run time: it costs start-up time
    from typing import TextIO

LEVELS = {"debug": 10, "info": 20, "warning": 30, "error": 40}


def utc_now() -> str:
    return format_rfc3339(time.time())


class Log:
    def __init__(
        self,
        directory: Path | None,
        *,
        level: str = "info",
        redact: Callable[[str], str] = lambda s: s,
        max_bytes: int = 1024 * 1024,
        backups: int = 5,
        echo: TextIO | None = sys.stderr,
    ) -> None:
        self.directory = directory
        self.level = LEVELS.get(level, 20)
        self.redact = redact
        self.max_bytes = max_bytes
        self.backups = backups
        self.echo = echo
        self.path = None if directory is None else directory / "agent.log"

    def _rotate(self) -> None:
        assert self.path is not None
        for i in range(self.backups - 1, 0, -1):
            older = self.path.with_name(f"agent.log.{i}")
            if older.exists():
                os.replace(older, self.path.with_name(f"agent.log.{i + 1}"))
        os.replace(self.path, self.path.with_name("agent.log.1"))

    def write(self, level: str, message: str) -> None:
        if LEVELS[level] < self.level:
            return
        line = self.redact(f"{utc_now()} {level.upper():7} {message}").replace("\n", "\n    ")
        if self.echo is not None:
            print(line, file=self.echo, flush=True)
        if self.path is None:
            return
        try:
            assert self.directory is not None
            self.directory.mkdir(parents=True, exist_ok=True)
            if self.path.exists() and self.path.stat().st_size >= self.max_bytes:
                self._rotate()
            with open(self.path, "a", encoding="utf-8") as f:
                f.write(line + "\n")
        except OSError as exc:  # a full disk must not stop the agent
            if self.echo is not None:
                print(f"(cannot write the log: {exc})", file=self.echo)

    def debug(self, message: str) -> None:
        self.write("debug", message)

    def info(self, message: str) -> None:
        self.write("info", message)

    def warning(self, message: str) -> None:
        self.write("warning", message)

    def error(self, message: str) -> None:
        self.write("error", message)
