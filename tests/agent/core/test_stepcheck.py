"""The agent's hand-written step check agrees with the schema's `$defs/step`."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vmprep.agent.stepcheck import COMMON, KINDS, check_step, check_steps
from vmprep.spec.schema import validator

SCHEMA = validator("step")

VALID: list[dict[str, Any]] = [
    {"id": "a", "powershell": "Write-Host hi"},
    {"id": "b", "cmd": "echo hi", "retries": 3, "retry_delay": "500ms", "timeout": 10},
    {"id": "c", "exec": {"argv": ["x"], "env": {"A": {"secret": "s"}}, "success_exit_codes": [0]}},
    {"id": "d", "file": {"path": "/x", "content": "hi", "encoding": "base64", "overwrite": False}},
    {"id": "e", "download": {"url": "https://x/y", "sha256": "a" * 64, "to": "/t"}},
    {"id": "f", "msi": {"path": "C:\\a.msi", "properties": {"ADDLOCAL": "ALL"}}},
    {
        "id": "g",
        "registry": {"key": "HKLM\\SOFTWARE\\X", "name": "", "value": [], "type": "REG_MULTI_SZ"},
    },
    {"id": "h", "windows_feature": {"names": ["Web-Server"], "include_management_tools": True}},
    {"id": "i", "service": {"name": "W3SVC", "start_type": "delayed", "state": "running"}},
    {"id": "j", "env": {"name": "PATH(x86)", "value": {"env": "X"}, "scope": "process"}},
    {"id": "k", "rename_computer": {"name": "WEB-{site}"}},
    {"id": "l", "join_domain": {"domain": "corp", "credentials": "remote"}},
    {
        "id": "m",
        "join_domain": {"domain": "c", "credentials": {"user": "u", "password": {"file": "p"}}},
    },
    {"id": "n", "local_user": {"name": "deploy", "password": {"secret": "p"}, "groups": ["A"]}},
    {"id": "o", "reboot": {}},
    {"id": "p", "wait_for": {"tcp": "127.0.0.1:80", "interval": "1s"}},
    {"id": "q", "phone_home": {}, "when": {"role": ["web"], "variables": {"x": True}}},
    {"id": "r", "exec": {"argv": ["x"]}, "run": "every_boot", "on_interrupt": "fail"},
    {"id": "s", "exec": {"argv": ["x"]}, "reboot_budget": 0, "continue_on_error": True},
]

INVALID: list[Any] = [
    [],
    {"powershell": "x"},
    {"id": "a"},
    {"id": "a", "cmd": "x", "exec": {"argv": ["x"]}},
    {"id": "-a", "cmd": "x"},
    {"id": "a", "cmd": ""},
    {"id": "a", "cmd": "x", "retries": 101},
    {"id": "a", "cmd": "x", "retries": True},
    {"id": "a", "cmd": "x", "timeout": "5 min"},
    {"id": "a", "cmd": "x", "extra": 1},
    {"id": "a", "exec": {"argv": []}},
    {"id": "a", "exec": {"argv": ["x"], "shell": True}},
    {"id": "a", "download": {"url": "u", "sha256": "abc", "to": "/t"}},
    {"id": "a", "msi": {"path": "p", "properties": {"lower": "x"}}},
    {"id": "a", "registry": {"key": "HKXX\\A", "name": "n"}},
    {"id": "a", "registry": {"key": "HKLM\\A", "name": "n", "value": 1.5}},
    {"id": "a", "windows_feature": {"names": ["A", "A"]}},
    {"id": "a", "join_domain": {"domain": "d", "credentials": {"user": "u", "password": "plain"}}},
    {"id": "a", "wait_for": {"interval": "1s"}},
    {"id": "a", "wait_for": {"http": "http://x", "tcp": "x:1"}},
    {"id": "a", "phone_home": {"x": 1}},
    {"id": "a", "cmd": "x", "when": {}},
    {"id": "a", "env": {"name": "A", "value": {"secret": "x", "env": "Y"}}},
]


def schema_ok(step: Any) -> bool:
    return SCHEMA.is_valid(step)


@pytest.mark.parametrize("step", VALID)
def test_valid_steps_pass_both(step: dict[str, Any]) -> None:
    assert schema_ok(step)
    assert check_step(step) == []


@pytest.mark.parametrize("step", INVALID)
def test_invalid_steps_fail_both(step: Any) -> None:
    assert not schema_ok(step)
    assert check_step(step) != []


def test_check_steps_lists_duplicates_and_positions() -> None:
    problems = check_steps([{"id": "a", "cmd": "x"}, {"id": "a", "cmd": "y"}, {"id": "b"}])
    assert any("steps[1].id: duplicate id 'a'" in p for p in problems)
    assert any(p.startswith("steps[2]") for p in problems)
    assert check_steps({"id": "a"}) == ["steps: expected a list"]


# --- generated steps: mutate valid ones at every level and compare verdicts ---------------------

json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-5, max_value=200),
    st.sampled_from([0.0, 1.0, 1.5, -1.0, 100.0]),
    st.sampled_from(
        [
            "",
            "x",
            "A",
            "30s",
            "5 m",
            "500ms",
            "1.5h",
            "remote",
            "HKLM\\A",
            "a" * 64,
            "x:80",
            "a\n",
            "-a",
            "A_B",
            "UPPER",
            "running",
            "present",
            "absent",
            "fail",
            "every_boot",
        ]
    ),
    st.text(max_size=4),
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.dictionaries(
            st.sampled_from(["secret", "env", "file", "argv", "name", "x", "path", "user"]),
            inner,
            max_size=2,
        ),
    ),
    max_leaves=6,
)

ALL_KEYS = [*KINDS, *COMMON, "bogus"]


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(value, dict):
        for k, v in value.items():
            out.extend(_paths(v, (*prefix, k)))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            out.extend(_paths(v, (*prefix, i)))
    return out


@st.composite
def mutated_steps(draw: st.DrawFn) -> Any:
    step = json.loads(json.dumps(draw(st.sampled_from(VALID))))
    for _ in range(draw(st.integers(1, 3))):
        paths = _paths(step)
        path = draw(st.sampled_from(paths))
        op = draw(st.sampled_from(["replace", "delete", "add"]))
        if not path:
            if op == "add" and isinstance(step, dict):
                step[draw(st.sampled_from(ALL_KEYS))] = draw(json_values)
            continue
        parent = step
        for part in path[:-1]:
            parent = parent[part]
        last = path[-1]
        if op == "delete":
            del parent[last]
        elif op == "replace":
            parent[last] = draw(json_values)
        elif isinstance(parent[last], dict):
            parent[last][
                draw(st.sampled_from(["x", "value", "state", "names", "http", "secret"]))
            ] = draw(json_values)
        elif isinstance(parent[last], list):
            parent[last].append(draw(json_values))
    return step


@settings(max_examples=1500, deadline=None, suppress_health_check=list(HealthCheck))
@given(mutated_steps())
@pytest.mark.slow
def test_generated_steps_agree_with_schema(step: Any) -> None:
    assert schema_ok(step) == (check_step(step) == []), (step, check_step(step))
