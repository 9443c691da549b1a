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


def definition_text(name: str) -> str:
    """One `$defs` entry as a standalone schema (what `vmprep schema --definition` prints)."""
    from vmprep.errors import UsageError

    root = schema()
    if name not in root["$defs"]:
        raise UsageError(
            f"no definition {name!r} in the schema", hint=f"one of: {', '.join(root['$defs'])}"
        )
    standalone = {
        "$schema": root["$schema"],
        "$id": f"{root['$id'].removesuffix('.json')}-{name}.json",
        "$ref": f"#/$defs/{name}",
        "$defs": root["$defs"],
    }
    return json.dumps(standalone, indent=2) + "\n"


@cache
def validator(definition: str | None = None) -> Any:
    """A Draft 2020-12 validator for the spec, or for one `$defs` entry (e.g. "step").

    It runs on `runtime_schema()`: the same rules, shaped for speed (see there).
    """
    from vmprep.spec.fastcheck import FastValidator

    return FastValidator(runtime_schema(definition), format_checker=None)


@cache
def runtime_schema(definition: str | None = None) -> dict[str, Any]:
    """The schema with the same meaning, compiled for validating thousands of files fast.

    - Every `$ref` is inlined (the schema is not recursive), so no reference is looked up;
      `x-ref` keeps the definition's name for error messages.
    - A `oneOf` whose branches have different JSON types becomes an `anyOf`.
    - "Exactly one of these keys" (a step's kind, wait_for's target) written as a `oneOf` of
      `required`s costs an error object per non-matching branch; it becomes the keyword
      `x-exactly-one: [keys]`, which FastValidator checks by counting the keys present.
    tests/spec/test_schema.py checks that both forms accept and refuse the same documents.
    """
    node = schema() if definition is None else schema()["$defs"][definition]
    compiled: dict[str, Any] = _compile({k: v for k, v in node.items() if k != "$defs"}, {})
    return compiled


def _compile(node: Any, done: dict[str, Any]) -> Any:
    if isinstance(node, list):
        return [_compile(item, done) for item in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        name = node["$ref"].rsplit("/", 1)[-1]
        if name not in done:  # each definition is compiled once and shared
            done[name] = {**_compile(schema()["$defs"][name], done), "x-ref": name}
        if len(node) == 1:
            return done[name]
        rest = {k: _compile(v, done) for k, v in node.items() if k != "$ref"}
        return {**done[name], **rest}
    out = {
        k: (v if k in ("enum", "const", "default") else _compile(v, done)) for k, v in node.items()
    }
    kinds = _exactly_one(node)
    if kinds:
        del out["oneOf"]
        out["x-exactly-one"] = kinds  # a keyword of vmprep.spec.fastcheck.FastValidator
    if "oneOf" in out and "anyOf" not in out and _disjoint(out["oneOf"]):
        out["anyOf"] = out.pop("oneOf")  # same meaning; stops at the first branch that fits
    return out


def _disjoint(branches: list[Any]) -> bool:
    """True when no value can match two branches: each has a different JSON type."""
    seen: set[str] = set()
    for branch in branches:
        if not isinstance(branch, dict):
            return False
        const = branch.get("const")
        kind = branch.get("type")
        if isinstance(const, (str, bool)):
            kind = "string" if isinstance(const, str) else "boolean"
        elif "const" in branch or not isinstance(kind, str):
            return False
        types = {"number", "integer"} if kind in ("number", "integer") else {kind}
        if types & seen:
            return False
        seen |= types
    return True


def _exactly_one(node: dict[str, Any]) -> list[str] | None:
    branches = node.get("oneOf")
    if (
        not isinstance(branches, list)
        or node.get("additionalProperties") is not False
        or not all(list(b) == ["required"] and len(b["required"]) == 1 for b in branches)
    ):
        return None
    return [b["required"][0] for b in branches]


@cache
def step_kinds() -> tuple[str, ...]:
    """The step kinds, in the schema's order (powershell, cmd, exec, ...)."""
    return tuple(b["required"][0] for b in schema()["$defs"]["step"]["oneOf"])


@cache
def os_names() -> tuple[str, ...]:
    return tuple(schema()["properties"]["image"]["properties"]["os"]["enum"])
