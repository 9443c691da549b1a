"""Strict JSON objects: a repeated key is an error, never "the last one wins".

RFC 8259 leaves duplicate names undefined, and parsers disagree on which value counts, so a
body that holds one could mean two things to two readers (agent.json, a signed document, a
status report). Standard library only: agent.pyz and the server both use it.
"""

from __future__ import annotations

from collections.abc import Callable

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing is not imported at run time: it costs start-up time
    from typing import Any


def no_duplicate_keys(
    error: Callable[[str], Exception],
) -> Callable[[list[tuple[str, Any]]], dict[str, Any]]:
    """A `json.loads(object_pairs_hook=...)` that raises `error("duplicate key 'k'")`."""

    def hook(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        obj: dict[str, Any] = {}
        for key, value in pairs:
            if key in obj:
                raise error(f"duplicate key {key!r}")
            obj[key] = value
        return obj

    return hook
