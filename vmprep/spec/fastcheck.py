"""A Draft 2020-12 validator that skips the descent into simple leaf schemas a value satisfies.

jsonschema creates a child validator for every property and list item it descends into, which
is most of the time `vmprep validate` spends on a spec. For a leaf schema made only of
`type`, `enum`, `const`, `pattern`, length and range keywords (and annotations), a plain Python
predicate decides validity. When it says "valid" the descent would have yielded nothing, so
it is skipped; otherwise jsonschema descends as usual and reports the error itself. The result
is the same list of errors, in the same order (tests/spec/test_schema.py compares the two).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Any

from jsonschema import Draft202012Validator, ValidationError, validators

Predicate = Callable[[Any], bool]
_ANNOTATIONS = {"description", "default", "title", "examples", "format", "$comment", "x-ref"}
_SIMPLE = {"type", "enum", "const", "pattern", "minLength", "maxLength", "minimum", "maximum"}
_NESTED = {"anyOf", "items", "minItems", "maxItems", "uniqueItems", "additionalProperties"}
_TYPES: dict[str, Predicate] = {
    "string": lambda v: isinstance(v, str),
    "boolean": lambda v: isinstance(v, bool),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "null": lambda v: v is None,
}
_CACHE: dict[int, tuple[Any, Predicate | None]] = {}  # id(schema) -> (schema, predicate)


def leaf_predicate(schema: Any) -> Predicate | None:
    """A predicate that is True only for values `schema` accepts, or None if it is not a leaf."""
    entry = _CACHE.get(id(schema))
    if entry is None or entry[0] is not schema:
        entry = (schema, _build(schema))
        _CACHE[id(schema)] = entry
    return entry[1]


def _build(schema: Any) -> Predicate | None:
    if not isinstance(schema, dict) or not set(schema) <= _SIMPLE | _NESTED | _ANNOTATIONS:
        return None
    checks: list[Predicate] = []
    nested = _nested(schema)
    if nested is None:
        return None
    checks.extend(nested)
    kind = schema.get("type")
    if kind is not None:
        kinds = [kind] if isinstance(kind, str) else kind
        if not all(k in _TYPES for k in kinds):
            return None
        tests = [_TYPES[k] for k in kinds]
        checks.append(lambda v: any(t(v) for t in tests))
    if "enum" in schema:
        if not all(isinstance(e, str) for e in schema["enum"]):
            return None  # strings only: 1 == True makes other enums subtle
        allowed = frozenset(schema["enum"])
        checks.append(lambda v: isinstance(v, str) and v in allowed)
    if "const" in schema:
        if not isinstance(schema["const"], str):
            return None
        const = schema["const"]
        checks.append(lambda v: isinstance(v, str) and v == const)
    if "pattern" in schema:
        search = re.compile(schema["pattern"]).search
        checks.append(lambda v: not isinstance(v, str) or search(v) is not None)
    low, high = schema.get("minLength", 0), schema.get("maxLength")
    if "minLength" in schema or high is not None:
        # jsonschema counts code points, as len() does
        checks.append(
            lambda v: not isinstance(v, str) or (len(v) >= low and (high is None or len(v) <= high))
        )
    if "minimum" in schema or "maximum" in schema:
        lo, hi = schema.get("minimum"), schema.get("maximum")
        checks.append(
            lambda v: (
                not _TYPES["number"](v) or ((lo is None or v >= lo) and (hi is None or v <= hi))
            )
        )
    return lambda v: all(c(v) for c in checks)


def _nested(schema: dict[str, Any]) -> list[Predicate] | None:
    """Predicates for anyOf of leaves, lists of leaves and maps of leaves; None if not leaves."""
    checks: list[Predicate] = []
    if "anyOf" in schema:
        branches = [leaf_predicate(b) for b in schema["anyOf"]]
        if any(b is None for b in branches):
            return None
        tests = [b for b in branches if b is not None]
        checks.append(lambda v: any(t(v) for t in tests))
    if "items" in schema:
        item = leaf_predicate(schema["items"])
        if item is None:
            return None
        checks.append(lambda v: not isinstance(v, list) or all(item(i) for i in v))
    if "minItems" in schema or "maxItems" in schema:
        lo, hi = schema.get("minItems", 0), schema.get("maxItems")
        checks.append(
            lambda v: not isinstance(v, list) or (len(v) >= lo and (hi is None or len(v) <= hi))
        )
    if schema.get("uniqueItems"):  # decided here only for lists of strings
        checks.append(
            lambda v: (
                not isinstance(v, list)
                or (all(isinstance(i, str) for i in v) and len(set(v)) == len(v))
            )
        )
    if "additionalProperties" in schema:
        value = leaf_predicate(schema["additionalProperties"])
        if value is None:
            return None
        checks.append(lambda v: not isinstance(v, dict) or all(value(i) for i in v.values()))
    return checks


def _properties(
    validator: Any, properties: dict[str, Any], instance: Any, schema: Any
) -> Iterator[Any]:
    if not isinstance(instance, dict):
        return
    for name, subschema in properties.items():
        if name in instance:
            ok = leaf_predicate(subschema)
            if ok is not None and ok(instance[name]):
                continue
            yield from validator.descend(instance[name], subschema, path=name, schema_path=name)


def _items(validator: Any, items: Any, instance: Any, schema: Any) -> Iterator[Any]:
    if not isinstance(instance, list) or "prefixItems" in schema or items is False:
        yield from _ORIGINAL_ITEMS(validator, items, instance, schema)
        return
    ok = leaf_predicate(items)
    for index, item in enumerate(instance):
        if ok is not None and ok(item):
            continue
        yield from validator.descend(item, items, path=index)


def _exactly_one(validator: Any, keys: list[str], instance: Any, schema: Any) -> Iterator[Any]:
    """`x-exactly-one: [a, b, c]`: the object has exactly one of these keys (what a `oneOf`
    of `{required: [a]}`, `{required: [b]}`, ... says, without an error per branch)."""
    if isinstance(instance, dict):
        present = [k for k in keys if k in instance]
        if len(present) != 1:
            yield ValidationError(f"needs exactly one of {keys}, has {present}")


def _is_integer(checker: Any, value: Any) -> bool:
    """JSON Schema counts 2.0 as an integer; a spec does not (LogonCount would render `2.0`)."""
    return isinstance(value, int) and not isinstance(value, bool)


_ORIGINAL_ITEMS = Draft202012Validator.VALIDATORS["items"]
FastValidator: Any = validators.extend(  # type: ignore[no-untyped-call]
    Draft202012Validator,
    {"properties": _properties, "items": _items, "x-exactly-one": _exactly_one},
    type_checker=Draft202012Validator.TYPE_CHECKER.redefine("integer", _is_integer),
)
