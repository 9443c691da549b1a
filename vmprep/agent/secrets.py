"""Secrets by reference, and redaction of every known value wherever text leaves the agent.

Values come from agent.json's `secrets` map (render writes `env:NAME` and `file:<path>` there)
and from a remote document's `secrets`. A step refers to one as `{"secret": name}` (or the
render-time `{"env": NAME}` / `{"file": path}` forms, looked up as `env:NAME` / `file:path`).
Values live in memory only: never written to the state file, a log or a report.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing is not imported at run time: it costs start-up time
    from typing import Any

MASK = "***"


class Secret:
    """A secret value whose str() and repr() never show it; `.reveal()` gives the value."""

    __slots__ = ("_value", "name")

    def __init__(self, name: str, value: str) -> None:
        self.name = name
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return f"Secret({self.name!r})"

    __str__ = __repr__


class SecretError(Exception):
    """A reference to a secret the agent does not have."""


def ref_name(ref: Mapping[str, Any]) -> str:
    """The key under which a reference's value is stored."""
    if "secret" in ref:
        return str(ref["secret"])
    if "env" in ref:
        return f"env:{ref['env']}"
    return f"file:{ref['file']}"


def is_ref(value: object) -> bool:
    return (
        isinstance(value, dict)
        and len(value) == 1
        and next(iter(value)) in ("secret", "env", "file")
        and isinstance(next(iter(value.values())), str)
    )


class Redactor:
    """Replaces every known secret value in a text by `***`."""

    def __init__(self, values: Iterable[str] = ()) -> None:
        self._values: list[str] = []
        self.add(values)

    def add(self, values: Iterable[str]) -> None:
        merged = set(self._values)
        merged.update(v for v in values if isinstance(v, str) and v)
        # Longest first, so a secret that contains another is masked whole.
        self._values = sorted(merged, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for value in self._values:
            if value in text:
                text = text.replace(value, MASK)
        return text

    def __bool__(self) -> bool:
        return bool(self._values)


class Vault:
    """The secrets a run knows: agent.json's and the current document's, plus their redactor."""

    def __init__(self, baked: Mapping[str, Any] | None = None) -> None:
        self._values: dict[str, str] = {}
        self.redact = Redactor()
        self.add(baked or {})

    def add(self, values: Mapping[str, Any]) -> None:
        clean = {str(k): v for k, v in values.items() if isinstance(v, str)}
        self._values.update(clean)
        self.redact.add(clean.values())

    def get(self, name: str) -> Secret:
        if name not in self._values:
            raise SecretError(f"secret {name!r} is not known to this instance")
        return Secret(name, self._values[name])

    def resolve(self, value: Any) -> Any:
        """A plain value, or a reference turned into its revealed string."""
        if is_ref(value):
            return self.get(ref_name(value)).reveal()
        return value
