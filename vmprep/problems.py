"""A problem found in an input file, with its position (STYLE.md: problems carry coordinates)."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Any


class Severity(str, Enum):
    ERROR = "error"
    WARNING = "warning"


@dataclass(frozen=True, order=True)
class Problem:
    file: str
    line: int  # 1-based; 0 when the problem cannot be placed
    column: int
    code: str  # "yaml", "schema", or a check id such as "computer-name"
    message: str
    severity: Severity = Severity.ERROR
    path: tuple[str | int, ...] = field(default=(), compare=False)  # JSON path in the document
    hint: str | None = field(default=None, compare=False)

    @property
    def is_error(self) -> bool:
        return self.severity is Severity.ERROR

    @property
    def json_path(self) -> str:
        """`$.agent.steps[2].download.url` style."""
        out = "$"
        for part in self.path:
            out += f"[{part}]" if isinstance(part, int) else f".{part}"
        return out

    def to_json(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "line": self.line,
            "column": self.column,
            "severity": self.severity.value,
            "code": self.code,
            "message": self.message,
            "path": self.json_path,
            "hint": self.hint,
        }

    def __str__(self) -> str:
        return (
            f"{self.file}:{self.line}:{self.column}: {self.severity.value}: "
            f"{self.message} ({self.code})"
        )
