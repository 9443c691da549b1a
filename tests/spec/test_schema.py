"""The schema file, its fast runtime form, and the messages schema errors turn into."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator, validators

from tests.conftest import ROOT
from vmprep.spec import winrules
from vmprep.spec.fastcheck import _exactly_one
from vmprep.spec.load import load_file
from vmprep.spec.model import definition_for
from vmprep.spec.schema import runtime_schema, schema, step_kinds, validator
from vmprep.spec.winrules import windows_time_zones, windows_zone_for_iana

STEP_KEYS = sorted(schema()["$defs"]["step"]["properties"])
INNER_KEYS = ["names", "name", "url", "sha256", "to", "path", "http", "tcp", "argv", "env"]
SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(-3, 3), st.sampled_from(["", "x", "C:\\x", "30s"])
)
VALUES = st.one_of(
    SCALARS,
    st.lists(SCALARS, max_size=2),
    st.dictionaries(st.sampled_from([*INNER_KEYS, "secret"]), SCALARS, max_size=3),
)
STEPS = st.dictionaries(st.sampled_from([*STEP_KEYS, "bogus"]), VALUES, max_size=4).map(
    lambda d: {"id": "s", **d}
)


def original(definition: str | None = None) -> Draft202012Validator:
    root = schema()
    target = (
        root if definition is None else {"$ref": f"#/$defs/{definition}", "$defs": root["$defs"]}
    )
    return Draft202012Validator(target)


def test_the_packaged_schema_is_a_valid_draft_2020_12_schema():
    Draft202012Validator.check_schema(schema())
    Draft202012Validator.check_schema(runtime_schema())


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(STEPS)
def test_the_runtime_schema_accepts_exactly_what_the_schema_accepts(step):
    assert validator("step").is_valid(step) == original("step").is_valid(step)


@settings(max_examples=200)
@given(STEPS)
def test_the_fast_validator_reports_the_errors_plain_jsonschema_reports(step):
    plain = validators.extend(Draft202012Validator, {"x-exactly-one": _exactly_one})(
        runtime_schema("step")
    )
    fast = [(list(e.absolute_path), e.message) for e in validator("step").iter_errors(step)]
    assert fast == [(list(e.absolute_path), e.message) for e in plain.iter_errors(step)]


def test_a_whole_example_validates_the_same_both_ways():
    doc = {
        "version": 1,
        "image": {"name": "x", "os": "windows-11"},
        "setup": {"locale": {"ui": "en-US"}, "timezone": "UTC"},
        "agent": {"steps": [{"id": "a", "wait_for": {"tcp": "db:1433"}, "timeout": "5m"}]},
    }
    assert validator().is_valid(doc)
    assert original().is_valid(doc)
    doc["agent"]["steps"][0]["wait_for"]["path"] = "C:\\x"
    assert not validator().is_valid(doc)
    assert not original().is_valid(doc)


def test_step_kinds_are_the_design_list():
    assert step_kinds() == (
        "powershell", "cmd", "exec", "file", "download", "msi", "registry", "windows_feature",
        "service", "env", "rename_computer", "join_domain", "local_user", "reboot", "wait_for",
        "phone_home",
    )  # fmt: skip


def test_the_time_zone_table_is_tzlocals_cldr_table():
    from tzlocal.windows_tz import tz_win, win_tz

    assert windows_time_zones() == win_tz
    assert windows_zone_for_iana("Europe/Berlin") == tz_win["Europe/Berlin"]
    packaged = Path(winrules.__file__).with_name("windows_zones.json").read_text("utf-8")
    assert json.loads(packaged)["iana"] == tz_win


HEAD = "version: 1\nimage: {name: t}\n"


@pytest.mark.parametrize(
    ("text", "line", "col", "message", "hint"),
    [
        ("version: 1\nimage: {name: t, os: windows-7}\n", 2, 22,
         ("image.os: 'windows-7' is not one of: windows-server-2016, windows-server-2019, "
         "windows-server-2022, windows-server-2025, windows-10, windows-11"),
         "did you mean 'windows-11'?"),
        ("version: 1\nimage: {name: t, os: windows-server-2O22}\n", 2, 22,
         None, "did you mean 'windows-server-2022'?"),
        ("version: 1\nimage: {name: t}\nsetup: {timezon: UTC}\n", 3, 9,
         "setup: unknown key 'timezon'", "did you mean 'timezone'?"),
        (HEAD + "timezone: UTC\n", 3, 1, "unknown key 'timezone'", "it belongs under setup"),
        (HEAD + "agent: {steps: [{id: a, reboot: {}, retry: 2}]}\n", 3, 37,
         "agent.steps[0]: unknown key 'retry'", "did you mean 'retry_delay' or 'retries'?"),
        ("version: 1\nimage: {os: windows-11}\n", 2, 1,
         "image: missing required key 'name'", None),
        ("version: 2\nimage: {name: t}\n", 1, 10, "version: must be 1, not 2", None),
        (HEAD + "setup: {organization: no}\n", 3, 23,
         "setup.organization: `no` is read as a boolean (false), not as a string",
         "quote it: 'no'"),
        (HEAD + "setup: {organization: 0755}\n", 3, 23,
         "setup.organization: `0755` is read as a number (493), not as a string",
         "quote it: '0755'"),
        (HEAD + "setup: {organization: }\n", 3, 23,
         "setup.organization: an empty value is read as null, not as a string",
         "write '' for an empty string, or leave the key out"),
        (HEAD + "agent: {steps: [{id: a, powershell: x, cmd: y}]}\n", 3, 17,
         "agent.steps[0]: a step needs exactly one kind, this one has 2: powershell, cmd",
         "split it into one step per kind"),
        (HEAD + "agent: {steps: [{id: a, retries: 1}]}\n", 3, 17,
         "agent.steps[0]: a step needs exactly one kind: " + ", ".join(step_kinds()), None),
        (HEAD + "agent: {steps: [{id: a, wait_for: {http: x, tcp: 'h:1'}}]}\n", 3, 25,
         ("agent.steps[0].wait_for: needs exactly one of: http, tcp, path, service; this one "
         "has 2: http, tcp"), None),
        (HEAD + "agent: {steps: [{id: a, reboot: {}, timeout: soon}]}\n", 3, 46,
         ("agent.steps[0].timeout: 'soon' is not a duration such as 30s, 5m or 1h, or a number "
         "of seconds"), None),
        (HEAD + "agent: {steps: [{id: a, reboot: {}, timeout: [5m]}]}\n", 3, 46,
         ("agent.steps[0].timeout: expected a duration such as 30s, 5m or 1h, or a number of "
         "seconds, got a list"), None),
        (HEAD + "setup: {administrator: {password: {env: A, file: b}}}\n", 3, 35,
         ("setup.administrator.password: a secret reference has exactly one of: env, file, "
         "secret"), None),
        (HEAD + "setup: {administrator: {password: hunter2}}\n", 3, 35,
         "setup.administrator.password: expected a mapping, got a string", None),
        (HEAD + "agent: {steps: [{id: 'bad id', reboot: {}}]}\n", 3, 22,
         ("agent.steps[0].id: 'bad id' is not an id: letters, digits, '.', '_' and '-', "
         "starting with a letter or digit, at most 64 characters"), None),
        (HEAD + "setup: {first_logon_commands: [" + "{command: x}, " * 501 + "]}\n", 3, 31,
         ("setup.first_logon_commands: has more than 500 commands: Windows numbers them "
         "(Order) 1 to 500"), None),
        (HEAD + "agent: {steps: [{id: a, join_domain: {domain: d, credentials: {user: u}}}]}\n",
         3, 50, "agent.steps[0].join_domain.credentials: missing required key 'password'",
         None),
    ],
)  # fmt: skip
def test_schema_messages_are_readable_and_placed(problems, text, line, col, message, hint):
    found = [p for p in problems(text) if p.code in ("schema", "unquoted-string")]
    assert len(found) == 1, found
    (p,) = found
    assert (p.line, p.column) == (line, col)
    if message is not None:
        assert p.message == message
    assert p.hint == hint


@pytest.mark.parametrize(
    "path",
    sorted(ROOT.glob("examples/**/*.yaml")),
    ids=lambda p: p.name,
)
def test_every_example_validates_the_same_with_the_fast_validator(path):
    data = load_file(path).data
    if not isinstance(data, dict):
        return  # the example is about YAML itself
    definition = definition_for(data)
    plain = validators.extend(Draft202012Validator, {"x-exactly-one": _exactly_one})(
        runtime_schema(definition)
    )
    fast = [(list(e.absolute_path), e.message) for e in validator(definition).iter_errors(data)]
    assert fast == [(list(e.absolute_path), e.message) for e in plain.iter_errors(data)]
    assert validator(definition).is_valid(data) == original(definition).is_valid(data)


TEMPLATES = [
    {"powershell": "Get-Date"},
    {"exec": {"argv": ["x.exe"], "success_exit_codes": [0, 3010]}},
    {"file": {"path": "C:\\a.txt", "content": {"secret": "s"}}},
    {"download": {"url": "https://e.com/a", "sha256": "a" * 64, "to": "C:\\a"}},
    {"msi": {"path": "C:\\a.msi", "properties": {"ADDLOCAL": "ALL"}}},
    {"registry": {"key": "HKLM\\SOFTWARE\\X", "name": "v", "type": "REG_DWORD", "value": 1}},
    {"windows_feature": {"names": ["Web-Server"]}},
    {"join_domain": {"domain": "corp", "credentials": "remote"}},
    {"wait_for": {"tcp": "db:1433", "interval": "5s"}},
    {"reboot": {}},
]
MUTATIONS = st.sampled_from(["none", "drop", "extra", "null", "list", "number", "second-kind"])


@settings(max_examples=300)
@given(st.sampled_from(TEMPLATES), MUTATIONS, st.sampled_from(["timeout", "retries", "when"]))
def test_near_valid_steps_validate_the_same_both_ways(template, mutation, common):
    step = {"id": "s", **json.loads(json.dumps(template))}
    kind = next(iter(template))
    inner = step[kind]
    if mutation == "drop" and isinstance(inner, dict) and inner:
        inner.pop(next(iter(inner)))
    elif mutation == "extra" and isinstance(inner, dict):
        inner["bogus"] = 1
    elif mutation in ("null", "list", "number"):
        step[common] = {"null": None, "list": ["5m"], "number": 5}[mutation]
    elif mutation == "second-kind":
        step["reboot" if kind != "reboot" else "cmd"] = {} if kind != "reboot" else "x"
    plain = validators.extend(Draft202012Validator, {"x-exactly-one": _exactly_one})(
        runtime_schema("step")
    )
    assert validator("step").is_valid(step) == original("step").is_valid(step)
    fast = [(list(e.absolute_path), e.message) for e in validator("step").iter_errors(step)]
    assert fast == [(list(e.absolute_path), e.message) for e in plain.iter_errors(step)]


def test_every_schema_pattern_has_words_for_people():
    from vmprep.spec.validate import _PATTERN_WORDS

    def patterns(node):
        if isinstance(node, dict):
            if isinstance(node.get("pattern"), str):
                yield node["pattern"]
            for key, sub in node.items():
                if key != "not":  # `not: {pattern: '\\.sig$'}` has its own message
                    yield from patterns(sub)
        elif isinstance(node, list):
            for sub in node:
                yield from patterns(sub)

    assert set(patterns(schema())) <= set(_PATTERN_WORDS)
