"""The packaged JSON Schema (one schema, one truth) and its validator, compiled once."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any


@cache
def schema_text() -> str:
    return Path(__file__).with_name("schema.json").read_text(encoding="utf-8")


@cache
def schema() -> dict[str, Any]:
    result: dict[str, Any] = json.loads(schema_text())
    return result


@cache
def validator(definition: str | None = None) -> Any:
    """A Draft 2020-12 validator for the spec, or for one `$defs` entry (e.g. "step")."""
    from jsonschema import Draft202012Validator

    root = schema()
    target = (
        root if definition is None else {"$ref": f"#/$defs/{definition}", "$defs": root["$defs"]}
    )
    return Draft202012Validator(target, format_checker=None)


@cache
def step_kinds() -> tuple[str, ...]:
    """The step kinds, in the schema's order (powershell, cmd, exec, ...)."""
    return tuple(b["required"][0] for b in schema()["$defs"]["step"]["oneOf"])


@cache
def os_names() -> tuple[str, ...]:
    return tuple(schema()["properties"]["image"]["properties"]["os"]["enum"])
