"""Checks of `agent.inputs`: what a deployment may say about the machine (docs/inputs.md)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from vmprep.problems import Severity
from vmprep.spec.checks import Doc, Finding, check


def declared_roles(doc: Doc) -> tuple[list[str] | None, str | None] | None:
    """The roles this image may take as (`values`, `pattern`) of the `role` input, or None
    when the role is fixed by `phone_home.role` alone. (A default must satisfy both.)"""
    keys = (doc.data.get("agent", {}).get("inputs") or {}).get("keys") or {}
    role = keys.get("role")
    if role is None:
        return None
    return role.get("values"), role.get("pattern")


def role_can_be(doc: Doc, wanted: str) -> bool:
    """Whether `when.role: wanted` can match some role this image may be deployed as."""
    declared = declared_roles(doc)
    if declared is None:
        return (doc.phone_home or {}).get("role") == wanted
    values, pattern = declared
    if values is not None and wanted not in values:
        return False
    if pattern:
        try:
            return re.fullmatch(pattern, wanted) is not None
        except re.error:
            return True  # the pattern itself is reported by `inputs`
    return True


@check("inputs")
def inputs(doc: Doc) -> Iterator[Finding]:
    agent = doc.data.get("agent", {})
    decl: dict[str, Any] | None = agent.get("inputs")
    if not decl:
        return
    where = ("agent", "inputs")
    sources = decl["sources"]
    if "file" in sources and not decl.get("file"):
        yield Finding(
            (*where, "sources"),
            "the `file` source needs agent.inputs.file",
            hint="name the file, e.g. file: 'C:\\ProgramData\\vmprep\\inputs.txt'",
        )
    if decl.get("file") and "file" not in sources:
        msg = "agent.inputs.file is never read: `file` is not one of the sources"
        yield Finding((*where, "file"), msg, Severity.WARNING)
    for name, key in decl["keys"].items():
        at = (*where, "keys", name)
        if name == "role" and doc.phone_home is None:
            msg = "a `role` input selects phone_home.role, and there is no phone_home"
            yield Finding(at, msg, hint="configure agent.phone_home, or drop the role input")
        if "values" not in key and "pattern" not in key:
            yield Finding(
                at,
                f"input {name!r} accepts anything: declare the values it may take",
                hint="give `values: [...]` or a `pattern:` (a value from the platform is "
                "untrusted input)",
            )
        pattern = None
        if "pattern" in key:
            try:
                pattern = re.compile(key["pattern"])
            except re.error as exc:
                yield Finding((*at, "pattern"), f"not a regular expression: {exc}")
        if key.get("required") and "default" in key:
            msg = f"input {name!r} is required and has a default: the default never applies"
            yield Finding((*at, "default"), msg, hint="drop one of the two")
        default = key.get("default")
        if default is not None:
            if "values" in key and default not in key["values"]:
                yield Finding((*at, "default"), f"default {default!r} is not one of `values`")
            if pattern is not None and not pattern.fullmatch(default):
                yield Finding((*at, "default"), f"default {default!r} does not match `pattern`")
