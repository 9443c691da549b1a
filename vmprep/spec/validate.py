"""JSON Schema errors -> Problems people can read, placed on the offending key or value."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from functools import cache
from typing import Any

from vmprep.problems import Problem, ref_name
from vmprep.spec.checks import cut, dotted
from vmprep.spec.load import JsonPath, Loaded
from vmprep.spec.schema import schema, step_kinds, validator

_TYPE_WORDS = {
    "object": "a mapping",
    "array": "a list",
    "string": "a string",
    "integer": "a whole number",
    "number": "a number",
    "boolean": "true or false",
    "null": "null",
}
_REF_WORDS = {
    "secretRef": "a secret reference ({env: NAME}, {file: path} or {secret: name})",
    "duration": "a duration such as 30s, 5m or 1h, or a number of seconds",
}
_PATTERN_WORDS = {
    "^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$": "a name: letters, digits, '.', '_' and '-', "
    "starting with a letter or digit, at most 128 characters",
    "^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$": "an id: letters, digits, '.', '_' and '-', "
    "starting with a letter or digit, at most 64 characters",
    "^[0-9]+(\\.[0-9]+)?(ms|s|m|h|d)$": _REF_WORDS["duration"],
    "^[0-9a-fA-F]{64}$": "64 hexadecimal digits (a SHA-256)",
    "^[A-Za-z_][A-Za-z0-9_]*$": "an environment variable name (letters, digits, '_')",
    "^[A-Z0-9]{5}(-[A-Z0-9]{5}){4}$": "a product key: XXXXX-XXXXX-XXXXX-XXXXX-XXXXX",
    "^[^\\s:]+:[0-9]{1,5}$": "host:port",
    "^[0-9a-f]{2}(-[0-9a-f]{2}){5}$": "a MAC address like 00-15-5d-01-02-03",
    "^[0-9]{12}$": "an AWS account id: 12 digits (quote it in YAML)",
    "^[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}$": "an Azure "
    "subscription id (a GUID like 8d10da13-8125-4ba9-a717-bf7490507b3d)",
    "^([a-z0-9.-]+:)?[a-z][a-z0-9-]{4,28}[a-z0-9]$": "a GCE project id: 6 to 30 lower-case "
    "letters, digits and '-', starting with a letter",
    "^[A-Z][A-Z0-9_.]*$": "an MSI public property name (upper case, e.g. ADDLOCAL)",
    "^[A-Za-z0-9][A-Za-z0-9._-]*$": "a feature name (letters, digits, '.', '_' and '-')",
    "^[A-Za-z_][A-Za-z0-9_()]*$": "an environment variable name (letters, digits, '_', '()')",
    "^[a-z][a-z0-9_]{0,31}$": "an input key: lower-case letters, digits and '_', starting "
    "with a letter, at most 32 characters",
    "^(HKLM|HKEY_LOCAL_MACHINE|HKCU|HKEY_CURRENT_USER|HKU|HKEY_USERS|HKCR|HKEY_CLASSES_ROOT)"
    "(\\\\[^\\\\]+)+$": "a registry key like 'HKLM\\SOFTWARE\\Contoso' (a hive, then a path)",
}
_SHAPE = {"type", "const", "enum"}  # keywords that say a oneOf branch is the wrong shape


def schema_problems(loaded: Loaded, definition: str | None = None) -> Iterator[Problem]:
    seen: set[tuple[JsonPath, str]] = set()
    for error in validator(definition).iter_errors(loaded.data):
        special = _exactly_one(error)
        explained = _explain(error, loaded) if special is None else special
        for path, message, hint, on_value in explained:
            if (path, message) in seen:
                continue
            seen.add((path, message))
            line, col = loaded.value_position(path) if on_value else loaded.position(path)
            surprise = hint is not None and (hint.startswith("quote it") or hint == _EMPTY_HINT)
            code = "unquoted-string" if surprise else "schema"
            yield Problem(loaded.file, line, col, code, message, path=path, hint=hint)


def variable_surprises(loaded: Loaded) -> Iterator[Problem]:
    """Variables take strings, numbers and booleans, so the schema cannot catch `0755` (the
    YAML 1.1 octal 493) or `yes` (true) there: flag such values as elsewhere. Plain `true`,
    `false` and decimal numbers are what they look like."""
    import re

    for path, surprise in loaded.surprises.items():
        if len(path) < 2 or path[-2] != "variables":
            continue
        text = surprise.text
        if surprise.word == "a boolean" and text.lower() in ("true", "false"):
            continue
        if surprise.word == "a number" and re.fullmatch(_PLAIN_NUMBER, text):
            continue
        if surprise.word == "null":
            continue  # the schema refuses null
        line, col = loaded.value_position(path)
        value = _value_at(loaded.data, path)
        msg = f"{_dotted(path)}{surprise.explain(value)}"
        hint = f"quote it: '{text}'"
        yield Problem(loaded.file, line, col, "unquoted-string", msg, path=path, hint=hint)


_PLAIN_NUMBER = r"-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][-+]?[0-9]+)?"


def _value_at(data: Any, path: JsonPath) -> Any:
    for key in path:
        data = data[key]
    return data


Explained = tuple[JsonPath, str, "str | None", bool]  # path, message, hint, point at the value


def _explain(error: Any, loaded: Loaded) -> Iterator[Explained]:
    path: JsonPath = tuple(error.absolute_path)
    where = _dotted(path)
    keyword = error.validator
    instance = error.instance
    surprise = loaded.surprises.get(path)
    string_check = keyword in ("type", "enum", "const", "oneOf", "anyOf", "pattern")
    if surprise and string_check and _accepts_string(error.schema):
        quoted = f"quote it: '{surprise.text}'" if surprise.text not in ("", "~") else None
        yield path, f"{where}{surprise.explain(instance)}", quoted or _EMPTY_HINT, True
        return
    if keyword == "additionalProperties" and isinstance(instance, dict):
        known = list(error.schema.get("properties", {}))
        for key in instance:
            if key not in known:
                hint = _did_you_mean(key, known) or _belongs_under(key)
                yield (*path, key), f"{where}unknown key '{cut(key)}'", hint, False
        return
    if keyword == "required":
        for key in error.validator_value:
            if isinstance(instance, dict) and key not in instance:
                yield path, f"{where}missing required key '{key}'", None, False
        return
    if keyword in ("oneOf", "anyOf"):
        yield from _explain_choice(error, loaded, path, where)
        return
    if keyword == "enum":
        choices = [str(v) for v in error.validator_value]
        hint = _did_you_mean(str(instance), choices)
        msg = f"{where}{_show(instance)} is not one of: {', '.join(choices)}"
        yield path, msg, hint, True
        return
    if path and path[-1] in ("env", "file", "secret") and isinstance(instance, str):
        instance = ref_name(str(path[-1]), instance)  # never echo what may be the secret
    message = _simple(keyword, error.validator_value, instance, path, error.schema)
    yield path, where + message, None, True


_EMPTY_HINT = "write '' for an empty string, or leave the key out"


def _exactly_one(error: Any) -> list[Explained] | None:
    """The error of runtime_schema's `x-exactly-one` keyword (a step's kind, wait_for's target)."""
    if error.validator != "x-exactly-one":
        return None
    kinds, owner = error.validator_value, error.instance
    path: JsonPath = tuple(error.absolute_path)
    present = [k for k in kinds if k in owner]
    unknown = set(owner) - set(error.schema.get("properties", owner))
    if not present and unknown:
        return []  # the unknown key (a misspelt kind?) is reported on its own
    step = set(kinds) == set(step_kinds())
    what = "a step needs exactly one kind" if step else "needs exactly one of"
    where = _dotted(path)
    if len(present) > 1 and step:
        msg = f"{where}{what}, this one has {len(present)}: {', '.join(present)}"
        return [(path, msg, "split it into one step per kind", False)]
    if len(present) > 1:
        msg = (
            f"{where}{what}: {', '.join(kinds)}; this one has {len(present)}: {', '.join(present)}"
        )
        return [(path, msg, None, False)]
    return [(path, f"{where}{what}: {', '.join(kinds)}", None, False)]


def _explain_choice(error: Any, loaded: Loaded, path: JsonPath, where: str) -> Iterator[Explained]:
    branches = error.validator_value
    by_branch: dict[int, list[Any]] = {}
    for sub in error.context or ():
        by_branch.setdefault(sub.schema_path[0], []).append(sub)
    fitting = [
        i
        for i in range(len(branches))
        if not any(e.validator in _SHAPE and not e.relative_path for e in by_branch.get(i, []))
    ]
    if len(fitting) == 1 and by_branch.get(fitting[0]):
        for sub in by_branch[fitting[0]]:
            yield from _explain(sub, loaded)
        return
    words = _REF_WORDS.get(error.schema.get("x-ref")) or _or([_describe(b) for b in branches])
    yield path, f"{where}expected {words}, got {_show(error.instance)}", None, True


def _simple(
    keyword: str, expected: Any, instance: Any, path: JsonPath, node: dict[str, Any]
) -> str:
    if keyword == "type":
        types: list[str] = expected if isinstance(expected, list) else [expected]
        if "integer" in types and isinstance(instance, float) and instance.is_integer():
            return f"{instance!r} is not a whole number: write {int(instance)}"
        words = [_TYPE_WORDS.get(t, t) for t in types]
        return f"expected {_or(words)}, got {_kind(instance)}"
    if keyword == "const":
        return f"must be {_show(expected)}, not {_show(instance)}"
    if keyword == "pattern":
        if expected in _PATTERN_WORDS:
            return f"{_show(instance)} is not {_PATTERN_WORDS[expected]}"
        return f"{_show(instance)} does not match the pattern {expected}"
    if keyword == "minLength":
        return "must not be empty" if expected == 1 else f"needs at least {expected} characters"
    if keyword == "maxLength":
        return f"is longer than {expected} characters"
    if keyword in ("minimum", "exclusiveMinimum"):
        return f"{_show(instance)} is too small: the minimum is {expected}"
    if keyword in ("maximum", "exclusiveMaximum"):
        return f"{_show(instance)} is too large: the maximum is {expected}"
    if keyword == "minItems":
        return "must not be empty" if expected == 1 else f"needs at least {expected} items"
    if keyword == "maxItems":
        if path[-1:] == ("first_logon_commands",):
            return f"has more than {expected} commands: Windows numbers them (Order) 1 to 500"
        return f"has more than {expected} items"
    if keyword == "uniqueItems":
        return "lists the same item twice"
    if keyword in ("minProperties", "maxProperties"):
        if set(node.get("properties", {})) == {"env", "file", "secret"}:
            return "a secret reference has exactly one of: env, file, secret"
        return "must not be empty" if keyword == "minProperties" else "has too many keys"
    if keyword == "not":
        return f"{_show(instance)} must not end in '.sig'"
    if keyword == "propertyNames":
        return f"{_show(instance)} is not an allowed key here"
    return f"{_show(instance)} is not valid here ({keyword})"


def _describe(branch: dict[str, Any]) -> str:
    name = branch.get("x-ref")  # a definition inlined by runtime_schema
    if isinstance(name, str) and name in _REF_WORDS:
        return _REF_WORDS[name]
    if "const" in branch:
        return _show(branch["const"])
    kind = branch.get("type")
    if kind == "array" and isinstance(branch.get("items"), dict):
        item = branch["items"]
        return f"a list of {_describe(item).removeprefix('a ').removeprefix('an ')}s"
    if isinstance(kind, str):
        return _TYPE_WORDS.get(kind, kind)
    return "a value of another shape"


def _accepts_string(node: dict[str, Any]) -> bool:
    node = _resolve(node)
    kind = node.get("type")
    if kind == "string" or (isinstance(kind, list) and "string" in kind):
        return True
    if any(isinstance(v, str) for v in node.get("enum", [])) or isinstance(node.get("const"), str):
        return True
    return any(_accepts_string(b) for b in node.get("oneOf", []) + node.get("anyOf", []))


def _resolve(node: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        node = schema()["$defs"][node["$ref"].rsplit("/", 1)[-1]]
    return node


def _belongs_under(key: str) -> str | None:
    """`timezone` at the top level: "it belongs under setup"."""
    places = _key_index().get(key)
    return f"it belongs under {' or '.join(places[:2])}" if places else None


@cache
def _key_index() -> dict[str, list[str]]:
    index: dict[str, list[str]] = {}

    def walk(node: Any, where: str) -> None:
        if not isinstance(node, dict):
            return
        for key, sub in node.get("properties", {}).items():
            index.setdefault(key, []).append(where or "the top level")
            walk(_resolve(sub), f"{where}.{key}" if where else key)
        if isinstance(node.get("items"), dict):
            walk(_resolve(node["items"]), f"{where}[]")

    walk(schema(), "")
    return index


def _did_you_mean(word: str, choices: Iterable[str]) -> str | None:
    import difflib  # only on the error path

    close = difflib.get_close_matches(word, list(choices), n=3, cutoff=0.6)
    # A typo keeps the start of the word: 'retry' means 'retries' more than 'registry'.
    close.sort(key=lambda c: _common_start(c, word), reverse=True)
    if not close:
        return None
    # A word cut short ('retry') may mean more than one key: offer two.
    shown = close[:2] if close[0].startswith(word) else close[:1]
    return f"did you mean {' or '.join(repr(c) for c in shown)}?"


def _common_start(a: str, b: str) -> int:
    n = 0
    while n < min(len(a), len(b)) and a[n] == b[n]:
        n += 1
    return n


def _dotted(path: JsonPath) -> str:
    """`agent.steps[0].id: ` — the prefix of a message about `path` (none at the top level)."""
    return f"{dotted(path)}: " if path else ""


def _or(words: list[str]) -> str:
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " or " + words[-1]


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return "null" if value is None else type(value).__name__


def _show(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        text = cut(value)
        # Windows paths read better with single backslashes than repr()'s doubled ones.
        return f"'{text}'" if text.isprintable() and "'" not in text else repr(text)
    if isinstance(value, (int, float)) or value is None:
        return "null" if value is None else str(value)
    return _kind(value)
