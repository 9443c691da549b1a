"""Durations as agent.json writes them: `500ms`, `30s`, `5m`, `1h`, `1d`, or seconds."""

from __future__ import annotations

import re

# The same pattern as the schema's `$defs/duration` (matched with re.search, as jsonschema does).
PATTERN = re.compile(r"^[0-9]+(\.[0-9]+)?(ms|s|m|h|d)$")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def is_duration(value: object) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, (int, float)):
        return value >= 0
    return isinstance(value, str) and PATTERN.search(value) is not None


def parse_duration(value: object) -> float:
    """Seconds as a float; ValueError with a readable message for anything else."""
    if not is_duration(value):
        raise ValueError(
            f"not a duration: {value!r} (expected e.g. 500ms, 30s, 5m, 1h, 1d or seconds)"
        )
    if isinstance(value, (int, float)):
        return float(value)
    assert isinstance(value, str)
    match = PATTERN.search(value)
    assert match is not None
    unit = match.group(2)
    return float(value.strip()[: -len(unit)]) * _UNITS[unit]
