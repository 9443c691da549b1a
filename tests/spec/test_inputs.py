"""`agent.inputs` (issue 20): what a deployment may say, checked before an image is built."""

from __future__ import annotations

import pytest

from tests.spec.conftest import check

HEAD = """\
version: 1
image: {name: golden}
setup:
  administrator: {password: {env: P}}
agent:
  runtime: {python: 'C:\\Python313\\python.exe'}
"""
PHONE = """\
  phone_home:
    url: https://cfg.example.com/v1/config/{role}/{instance_id}
    role: web
    trusted_keys: ['ed25519:11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=']
"""


def errors(text: str) -> list[tuple[str, str]]:
    return [(p.code, p.message) for p in check(text) if p.code not in ("secret-in-image",)]


def inputs(keys: str, sources: str = "[azure-tags]", extra: str = "") -> str:
    return f"{HEAD}  inputs:\n    sources: {sources}\n{extra}    keys:\n{keys}{PHONE}"


def test_a_declared_role_with_values_is_fine():
    assert errors(inputs("      role: {values: [web, sql], default: web}\n")) == []


@pytest.mark.parametrize(
    ("keys", "message"),
    [
        ("      role: {default: web}\n", "accepts anything: declare the values"),
        ("      site: {pattern: '[a-z'}\n", "not a regular expression"),
        ("      role: {values: [web], default: sql}\n", "default 'sql' is not one of `values`"),
        ("      site: {pattern: '[a-z]+', default: AMS}\n", "does not match `pattern`"),
        ("      role: {values: [web], required: true, default: web}\n", "the default never"),
    ],
)
def test_declarations_that_cannot_work_are_errors(keys: str, message: str):
    found = errors(inputs(keys))
    assert [code for code, _ in found] == ["inputs"], found
    assert message in found[0][1]


def test_the_file_source_needs_a_file():
    found = errors(inputs("      role: {values: [web]}\n", sources="[file]"))
    assert found == [("inputs", "the `file` source needs agent.inputs.file")]


def test_a_role_input_needs_phone_home():
    text = f"{HEAD}  inputs:\n    sources: [aws-tags]\n    keys:\n      role: {{values: [web]}}\n"
    assert ("inputs", "a `role` input selects phone_home.role, and there is no phone_home") in (
        errors(text)
    )


def test_key_names_are_lower_case_identifiers():
    found = errors(inputs("      Role-Name: {values: [web]}\n"))
    assert [code for code, _ in found] == ["schema"]


def test_when_role_is_checked_against_the_roles_the_image_may_take():
    steps = (
        "  steps:\n"
        "    - {id: a, cmd: 'echo a', when: {role: sql}}\n"
        "    - {id: b, cmd: 'echo b', when: {role: oracle}}\n"
    )
    text = inputs("      role: {values: [web, sql]}\n") + steps
    found = [p for p in check(text) if p.code == "when"]
    assert [(p.severity.value, p.path) for p in found] == [
        ("warning", ("agent", "steps", 1, "when", "role"))
    ]


def test_input_keys_count_as_variables_for_when():
    steps = "  steps:\n    - {id: a, cmd: 'echo a', when: {variables: {site: fra1}}}\n"
    text = inputs("      role: {values: [web]}\n      site: {pattern: '[a-z]{3}[0-9]'}\n") + steps
    assert [code for code, _ in errors(text)] == []
