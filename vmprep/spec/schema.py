"""The packaged JSON Schema (one schema, one truth) and its validator, compiled once."""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any


@cache
def schema_text() -> str:
    return resources.files("vmprep.spec").joinpath("schema.json").read_text(encoding="utf-8")


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
