"""The structural check of a step: a hand-written mirror of the schema's `$defs/step`.

The agent cannot carry jsonschema, so this checks the same shape by hand; a test feeds many
generated steps to both and asserts they agree. Patterns are matched with `re.search`, as
jsonschema does. `check_step` is the schema, exactly; `check_steps` adds list-level rules
(a list, unique ids).
"""

from __future__ import annotations

import re
from collections.abc import Callable

from vmprep.protocol.durations import is_duration

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing is not imported at run time: it costs start-up time
    from typing import Any

KINDS = (
    "powershell",
    "cmd",
    "exec",
    "file",
    "download",
    "msi",
    "registry",
    "windows_feature",
    "service",
    "env",
    "rename_computer",
    "join_domain",
    "local_user",
    "reboot",
    "wait_for",
    "phone_home",
)
COMMON = (
    "id",
    "description",
    "retries",
    "retry_delay",
    "timeout",
    "continue_on_error",
    "run",
    "on_interrupt",
    "reboot_budget",
    "reboot_timing",
    "after_reboot",
    "when",
)


class _Rx:
    """A pattern compiled on first use: most are for kinds a given list does not have, and
    compiling them all at import costs start-up time."""

    __slots__ = ("_rx", "pattern")

    def __init__(self, pattern: str) -> None:
        self.pattern = pattern
        self._rx: re.Pattern[str] | None = None

    def search(self, text: str) -> re.Match[str] | None:
        if self._rx is None:
            self._rx = re.compile(self.pattern)
        return self._rx.search(text)


_ID = _Rx(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_ENV_REF = _Rx(r"^[A-Za-z_][A-Za-z0-9_]*$")
_SHA256 = _Rx(r"^[0-9a-fA-F]{64}$")
_MSI_PROP = _Rx(r"^[A-Z][A-Z0-9_.]*$")
_REG_KEY = _Rx(
    r"^(HKLM|HKEY_LOCAL_MACHINE|HKCU|HKEY_CURRENT_USER|HKU|HKEY_USERS|HKCR|HKEY_CLASSES_ROOT)"
    r"(\\[^\\]+)+$"
)
_FEATURE = _Rx(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_ENV_NAME = _Rx(r"^[A-Za-z_][A-Za-z0-9_()]*$")
_TCP = _Rx(r"^[^\s:]+:[0-9]{1,5}$")

if TYPE_CHECKING:
    Check = Callable[[Any, str, list[str]], None]


def _is_int(v: Any) -> bool:
    # As the spec schema (#13): 2.0 is not a whole number, whatever JSON Schema says.
    return isinstance(v, int) and not isinstance(v, bool)


def _str(v: Any, p: str, out: list[str], *, min_len: int = 0, pattern: Any = None) -> None:
    if not isinstance(v, str):
        out.append(f"{p}: expected a string")
    elif len(v) < min_len:
        out.append(f"{p}: must not be empty")
    elif pattern is not None and not pattern.search(v):
        out.append(f"{p}: {v!r} does not match {pattern.pattern}")


def _bool(v: Any, p: str, out: list[str]) -> None:
    if not isinstance(v, bool):
        out.append(f"{p}: expected true or false")


def _enum(*values: str) -> Check:
    def check(v: Any, p: str, out: list[str]) -> None:
        if not isinstance(v, str) or v not in values:
            out.append(f"{p}: expected one of {', '.join(values)}")

    return check


def _int_range(lo: int, hi: int | None = None) -> Check:
    def check(v: Any, p: str, out: list[str]) -> None:
        if not _is_int(v) or v < lo or (hi is not None and v > hi):
            out.append(f"{p}: expected an integer {lo}..{hi if hi is not None else ''}")

    return check


def _duration(v: Any, p: str, out: list[str]) -> None:
    if not is_duration(v):
        out.append(f"{p}: expected a duration (500ms, 30s, 5m, 1h, 1d or seconds)")


def _secret_ref_ok(v: Any) -> bool:
    if not isinstance(v, dict) or len(v) != 1:
        return False
    ((key, val),) = v.items()
    if key == "env":
        return isinstance(val, str) and _ENV_REF.search(val) is not None
    if key == "file":
        return isinstance(val, str) and len(val) >= 1
    if key == "secret":
        return isinstance(val, str) and _ID.search(val) is not None
    return False


def _secret_ref(v: Any, p: str, out: list[str]) -> None:
    if not _secret_ref_ok(v):
        out.append(
            f"{p}: expected a secret reference ({{secret: name}}, {{env: NAME}}, {{file: path}})"
        )


def _str_or_secret(v: Any, p: str, out: list[str]) -> None:
    if not isinstance(v, str) and not _secret_ref_ok(v):
        out.append(f"{p}: expected a string or a secret reference")


def _str_list(v: Any, p: str, out: list[str], *, min_items: int = 0, pattern: Any = None) -> None:
    if not isinstance(v, list):
        out.append(f"{p}: expected a list of strings")
        return
    if len(v) < min_items:
        out.append(f"{p}: expected at least {min_items} item(s)")
    for i, item in enumerate(v):
        _str(item, f"{p}[{i}]", out, pattern=pattern)


def _map_of(value_check: Check, key_pattern: Any = None) -> Check:
    def check(v: Any, p: str, out: list[str]) -> None:
        if not isinstance(v, dict):
            out.append(f"{p}: expected an object")
            return
        for key, item in v.items():
            if key_pattern is not None and not key_pattern.search(key):
                out.append(f"{p}: key {key!r} does not match {key_pattern.pattern}")
            value_check(item, f"{p}.{key}", out)

    return check


def _obj(fields: dict[str, Check], required: tuple[str, ...] = ()) -> Check:
    def check(v: Any, p: str, out: list[str]) -> None:
        if not isinstance(v, dict):
            out.append(f"{p}: expected an object")
            return
        out.extend(f"{p}: missing required field {name!r}" for name in required if name not in v)
        for key, item in v.items():
            if key not in fields:
                out.append(f"{p}: unknown field {key!r}")
            else:
                fields[key](item, f"{p}.{key}", out)

    return check


def _one_or_many(v: Any, p: str, out: list[str]) -> None:
    if isinstance(v, list):
        _str_list(v, p, out, min_items=1)
    elif not isinstance(v, str):
        out.append(f"{p}: expected a string or a non-empty list of strings")


def _scalar(v: Any, p: str, out: list[str]) -> None:
    if not isinstance(v, (str, int, float)):  # bool is an int
        out.append(f"{p}: expected a string, number or boolean")


def _condition(v: Any, p: str, out: list[str]) -> None:
    _obj({"role": _one_or_many, "os": _one_or_many, "variables": _map_of(_scalar)})(v, p, out)
    if isinstance(v, dict) and not v:
        out.append(f"{p}: expected at least one condition")


def _nonempty(v: Any, p: str, out: list[str]) -> None:
    _str(v, p, out, min_len=1)


def _any_str(v: Any, p: str, out: list[str]) -> None:
    _str(v, p, out)


def _script(v: Any, p: str, out: list[str]) -> None:
    _str(v, p, out, min_len=1)


def _int_list(v: Any, p: str, out: list[str]) -> None:
    if not isinstance(v, list) or not all(_is_int(i) for i in v):
        out.append(f"{p}: expected a list of integers")


def _argv(v: Any, p: str, out: list[str]) -> None:
    _str_list(v, p, out, min_items=1)


def _pattern(rx: Any) -> Check:
    return lambda v, p, out: _str(v, p, out, pattern=rx)


def _reg_value(v: Any, p: str, out: list[str]) -> None:
    ok = (
        isinstance(v, str)
        or _is_int(v)
        or (isinstance(v, list) and all(isinstance(i, str) for i in v))
        or _secret_ref_ok(v)
    )
    if not ok:
        out.append(f"{p}: expected a string, an integer, a list of strings or a secret reference")


def _features(v: Any, p: str, out: list[str]) -> None:
    _str_list(v, p, out, min_items=1, pattern=_FEATURE)
    if isinstance(v, list) and len(v) != len({repr(i) for i in v}):
        out.append(f"{p}: names must be unique")


def _credentials(v: Any, p: str, out: list[str]) -> None:
    if v == "remote" and isinstance(v, str):
        return
    if not isinstance(v, dict):
        out.append(f'{p}: expected "remote" or {{user, password}}')
        return
    _obj({"user": _str_or_secret, "password": _secret_ref}, ("user", "password"))(v, p, out)


_WAIT_TARGETS = ("http", "tcp", "path", "service")


def _wait_for(v: Any, p: str, out: list[str]) -> None:
    _obj(
        {
            "http": _any_str,
            "tcp": _pattern(_TCP),
            "path": _any_str,
            "service": _any_str,
            "interval": _duration,
        }
    )(v, p, out)
    if isinstance(v, dict) and sum(1 for k in _WAIT_TARGETS if k in v) != 1:
        out.append(f"{p}: expected exactly one of http, tcp, path, service")


_PRESENT_ABSENT = _enum("present", "absent")

BODIES: dict[str, Check] = {
    "powershell": _script,
    "cmd": _script,
    "exec": _obj(
        {
            "argv": _argv,
            "cwd": _any_str,
            "env": _map_of(_str_or_secret),
            "success_exit_codes": _int_list,
        },
        ("argv",),
    ),
    "file": _obj(
        {
            "path": _any_str,
            "content": _str_or_secret,
            "encoding": _enum("utf-8", "base64"),
            "overwrite": _bool,
        },
        ("path", "content"),
    ),
    "download": _obj(
        {
            "url": _any_str,
            "sha256": _pattern(_SHA256),
            "to": _any_str,
            "headers": _map_of(_str_or_secret),
            "ca_bundle": _any_str,
        },
        ("url", "sha256", "to"),
    ),
    "msi": _obj(
        {
            "path": _any_str,
            "properties": _map_of(_str_or_secret, _MSI_PROP),
            "state": _PRESENT_ABSENT,
        },
        ("path",),
    ),
    "registry": _obj(
        {
            "key": _pattern(_REG_KEY),
            "name": _any_str,
            "type": _enum(
                "REG_SZ", "REG_EXPAND_SZ", "REG_DWORD", "REG_QWORD", "REG_MULTI_SZ", "REG_BINARY"
            ),
            "value": _reg_value,
            "state": _PRESENT_ABSENT,
        },
        ("key", "name"),
    ),
    "windows_feature": _obj(
        {"names": _features, "state": _PRESENT_ABSENT, "include_management_tools": _bool},
        ("names",),
    ),
    "service": _obj(
        {
            "name": _nonempty,
            "start_type": _enum("automatic", "delayed", "manual", "disabled"),
            "state": _enum("running", "stopped"),
        },
        ("name",),
    ),
    "env": _obj(
        {
            "name": _pattern(_ENV_NAME),
            "value": _str_or_secret,
            "scope": _enum("machine", "process"),
            "state": _PRESENT_ABSENT,
            "mode": _enum("set", "append", "prepend", "remove"),
        },
        ("name",),
    ),
    "rename_computer": _obj({"name": _nonempty}, ("name",)),
    "join_domain": _obj(
        {"domain": _nonempty, "ou": _any_str, "credentials": _credentials},
        ("domain", "credentials"),
    ),
    "local_user": _obj(
        {
            "name": _nonempty,
            "password": _secret_ref,
            "groups": lambda v, p, out: _str_list(v, p, out),
            "full_name": _any_str,
            "description": _any_str,
            "password_never_expires": _bool,
            "state": _PRESENT_ABSENT,
        },
        ("name",),
    ),
    "reboot": _obj({"reason": _any_str}),
    "wait_for": _wait_for,
    "phone_home": _obj({}),
}

_COMMON_CHECKS: dict[str, Check] = {
    "id": _pattern(_ID),
    "description": _any_str,
    "retries": _int_range(0, 100),
    "retry_delay": _duration,
    "timeout": _duration,
    "continue_on_error": _bool,
    "run": _enum("once_per_instance", "every_boot"),
    "on_interrupt": _enum("rerun", "fail"),
    "reboot_budget": _int_range(0, 50),
    "reboot_timing": _enum("now", "deferred"),
    "after_reboot": _bool,
    "when": _condition,
}


def step_kind(step: dict[str, Any]) -> str:
    """The kind of a checked step."""
    return next(k for k in KINDS if k in step)


def check_step(step: Any, path: str = "step") -> list[str]:
    """Problems with one step, the same verdict as the schema's `$defs/step` (empty = ok)."""
    out: list[str] = []
    if not isinstance(step, dict):
        return [f"{path}: expected an object"]
    if "id" not in step:
        out.append(f"{path}: missing required field 'id'")
    kinds = [k for k in KINDS if k in step]
    if len(kinds) != 1:
        found = ", ".join(kinds) or "none"
        out.append(f"{path}: expected exactly one step kind ({found} given)")
    for key, value in step.items():
        check = _COMMON_CHECKS.get(key) or BODIES.get(key)
        if check is None:
            out.append(f"{path}: unknown field {key!r}")
        else:
            check(value, f"{path}.{key}", out)
    return out


def check_steps(steps: Any) -> list[str]:
    """Problems with a list of steps (empty list = ok): each step, plus unique ids."""
    if not isinstance(steps, list):
        return ["steps: expected a list"]
    out: list[str] = []
    seen: set[str] = set()
    for i, step in enumerate(steps):
        out.extend(check_step(step, f"steps[{i}]"))
        step_id = step.get("id") if isinstance(step, dict) else None
        if isinstance(step_id, str):
            if step_id in seen:
                out.append(f"steps[{i}].id: duplicate id {step_id!r}")
            seen.add(step_id)
    return out
