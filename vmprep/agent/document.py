"""The config document's checks (docs/protocol.md "The config document"), run after the signature.

Strict JSON: UTF-8 without a byte-order mark, exactly one object, no duplicate keys, no
`NaN`/`Infinity` (nor a number too large for a float), at most 64 levels deep (the outermost
object is level 1). Then the fields, `serial` (a JSON integer literal, 1..2^53-1), the times
(RFC 3339, upper-case `T`/`Z` or `±hh:mm`, fractions allowed; valid from `issued_at` - 5 min
to `expires_at` + 5 min), `target`, every step's structure, and the replay rule against what
this instance has accepted.
"""

from __future__ import annotations

import json
import math
from typing import Any

from vmprep.protocol.strictjson import no_duplicate_keys
from vmprep.protocol.timestamps import is_rfc3339, parse_rfc3339

API_VERSION = "vmprep/v1"
KIND = "InstanceConfig"
MAX_DEPTH = 64
MAX_SERIAL = 2**53 - 1
SKEW = 300.0


class DocumentError(Exception):
    """A refused document; `code` is the protocol's error code."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def _invalid(message: str) -> DocumentError:
    return DocumentError("invalid_document", message)


_pairs = no_duplicate_keys(_invalid)


def _constant(name: str) -> Any:
    raise _invalid(f"{name} is not allowed in the document")


def _float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise _invalid(f"number {text[:40]} is out of range")
    return value


def _depth(value: Any) -> int:
    """Nesting depth without recursion: an object or array is one level, a scalar none."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        deepest = max(deepest, level)
        if deepest > MAX_DEPTH:
            return deepest
        stack.extend((child, level + 1) for child in children)
    return deepest


def parse_strict(body: bytes) -> dict[str, Any]:
    if body.startswith(b"\xef\xbb\xbf"):
        raise _invalid("the document starts with a byte-order mark")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _invalid(f"the document is not UTF-8 (byte {exc.start})") from None
    try:
        doc = json.loads(
            text, object_pairs_hook=_pairs, parse_constant=_constant, parse_float=_float
        )
    except RecursionError:
        raise _invalid(f"the document nests deeper than {MAX_DEPTH} levels") from None
    except json.JSONDecodeError as exc:
        raise _invalid(f"not JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
    except ValueError as exc:  # e.g. an integer literal with more digits than Python allows
        raise _invalid(f"not usable JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise _invalid("the document is not one JSON object")
    if _depth(doc) > MAX_DEPTH:
        raise _invalid(f"the document nests deeper than {MAX_DEPTH} levels")
    return doc


def parse_time(value: object, field: str) -> float:
    """Seconds since the epoch of an RFC 3339 date-time."""
    if not is_rfc3339(value):
        raise _invalid(f"{field} must be an RFC 3339 date-time such as 2026-11-25T10:00:00Z")
    assert isinstance(value, str)
    try:
        return parse_rfc3339(value)
    except ValueError:
        raise _invalid(f"{field} is not a valid date-time: {value}") from None


def _fields(doc: dict[str, Any]) -> None:
    for name in ("apiVersion", "kind", "serial", "issued_at", "expires_at", "target", "steps"):
        if name not in doc:
            raise _invalid(f"required field {name!r} is missing")
    if doc["apiVersion"] != API_VERSION:
        raise _invalid(f"apiVersion must be {API_VERSION!r}")
    if doc["kind"] != KIND:
        raise _invalid(f"kind must be {KIND!r}")
    serial = doc["serial"]
    if type(serial) is not int or not 1 <= serial <= MAX_SERIAL:
        raise _invalid("serial must be a JSON integer from 1 to 2^53-1")
    target = doc["target"]
    if not isinstance(target, dict) or not isinstance(target.get("role"), str):
        raise _invalid("target must be an object with a string 'role'")
    if "instance_id" in target and not isinstance(target["instance_id"], str):
        raise _invalid("target.instance_id must be a string")
    if not isinstance(doc["steps"], list):
        raise _invalid("steps must be a list")
    for name in ("variables", "secrets"):
        if name in doc and not isinstance(doc[name], dict):
            raise _invalid(f"{name} must be an object")
    if any(not isinstance(v, str) for v in doc.get("secrets", {}).values()):
        raise _invalid("every value in secrets must be a string")


def _steps(steps: list[Any]) -> None:
    from vmprep.agent import stepcheck

    problems = stepcheck.check_steps(steps)
    if problems:
        more = f" (and {len(problems) - 3} more)" if len(problems) > 3 else ""
        raise _invalid("bad steps: " + "; ".join(problems[:3]) + more)


def check_document(
    body: bytes,
    *,
    sha256: str,
    role: str,
    instance_id: str,
    now: float,
    accepted: tuple[int, str] | None,
) -> dict[str, Any]:
    """The document, checked; `DocumentError` with the protocol's code otherwise."""
    doc = parse_strict(body)
    _fields(doc)
    issued = parse_time(doc["issued_at"], "issued_at")
    expires = parse_time(doc["expires_at"], "expires_at")
    if issued > expires:
        raise _invalid("issued_at is after expires_at")
    _steps(doc["steps"])
    target = doc["target"]
    if target["role"] != role:
        raise DocumentError("wrong_target", f"the document is for role {target['role']!r}")
    if "instance_id" in target and target["instance_id"] != instance_id:
        raise DocumentError(
            "wrong_target", f"the document is for instance {target['instance_id']!r}"
        )
    if accepted is not None:
        serial, digest = accepted
        if doc["serial"] < serial:
            raise DocumentError(
                "replay", f"serial {doc['serial']} is older than the accepted {serial}"
            )
        if doc["serial"] == serial and sha256 != digest:
            raise DocumentError(
                "replay", f"serial {serial} was accepted before with different content"
            )
    if now < issued - SKEW:
        raise DocumentError("not_yet_valid", f"the document is valid from {doc['issued_at']}")
    if now > expires + SKEW:
        raise DocumentError("expired", f"the document expired at {doc['expires_at']}")
    return doc
