"""Arbitrary input through load + validate: a clean result or clean Problems, never an exception."""

from __future__ import annotations

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vmprep.problems import Problem
from vmprep.spec.model import check_bytes, check_data

SPEC_KEYS = ["version", "image", "name", "os", "setup", "agent", "steps", "id", "powershell",
             "computer_name", "timezone", "phone_home", "url", "role", "trusted_keys", "when",
             "download", "sha256", "to", "kind", "RoleConfig", "env", "secret", "<<"]  # fmt: skip
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20),
    st.sampled_from(["no", "on", "22:22", "0755", "2024-01-01", "~", "*", "C:\\x", "1", "30s"]),
)
KEYS = st.one_of(st.sampled_from(SPEC_KEYS), st.text(max_size=8))
DATA = st.recursive(
    SCALARS,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(KEYS, inner, max_size=5)),
    max_leaves=30,
)


def assert_clean(problems: list[Problem]) -> None:
    assert problems == sorted(problems)
    for p in problems:
        assert isinstance(p, Problem)
        assert p.message
        assert p.line >= 0
        assert p.column >= 0


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(max_size=300))
def test_arbitrary_text(text):
    assert_clean(check_bytes(text.encode("utf-8", "surrogatepass"), "fuzz.yaml"))


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200))
def test_arbitrary_bytes(raw):
    assert_clean(check_bytes(raw, "fuzz.yaml"))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(DATA)
@pytest.mark.slow
def test_arbitrary_yaml_shaped_data(data):
    text = yaml.safe_dump(data, allow_unicode=True)
    assert_clean(check_bytes(text.encode("utf-8", "surrogatepass"), "fuzz.yaml"))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(KEYS, DATA, max_size=4))
@pytest.mark.slow
def test_yaml_shaped_data_under_a_real_spec_head(extra):
    doc = {"version": 1, "image": {"name": "fuzz"}, **extra}
    text = yaml.safe_dump(doc, allow_unicode=True)
    assert_clean(check_bytes(text.encode("utf-8", "surrogatepass"), "fuzz.yaml"))


STEP_SHAPES = [
    {"download": {"url": "u", "sha256": "a" * 64, "to": "t"}},
    {"rename_computer": {"name": "n"}},
    {"file": {"path": "p", "content": "c"}},
    {"local_user": {"name": "n"}},
    {"env": {"name": "N", "value": {"env": "E"}}},
]
TEXT = st.text(max_size=16)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(STEP_SHAPES), TEXT, TEXT, TEXT, TEXT, TEXT)
def test_semantic_checks_take_any_strings(shape, a, b, c, d, e):
    kind, body = next(iter(shape.items()))
    body = {k: (a if isinstance(v, str) and k != "sha256" else v) for k, v in body.items()}
    doc = {
        "version": 1,
        "image": {"name": "x"},
        "setup": {"computer_name": b, "timezone": c, "locale": d},
        "agent": {
            "install_dir": e,
            "phone_home": {"url": a, "role": "web", "trusted_keys": [b]},
            "steps": [{"id": "s", kind: body, "when": {"role": c, "variables": {d: 1}}}],
        },
    }
    assert_clean(check_data(doc))
