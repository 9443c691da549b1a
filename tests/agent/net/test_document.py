"""The config document: strict JSON, fields, serial, times, target, steps, replay."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.agent.net.conftest import IDENTITY, NOW, doc_bytes, make_doc
from vmprep.agent.document import DocumentError, check_document, parse_strict, parse_time


def check(body: bytes, *, now: float = NOW, accepted=None, role: str = "web") -> dict[str, Any]:
    return check_document(
        body,
        sha256=hashlib.sha256(body).hexdigest(),
        role=role,
        instance_id=IDENTITY.instance_id,
        now=now,
        accepted=accepted,
    )


def refused(body: bytes, **kwargs: Any) -> DocumentError:
    with pytest.raises(DocumentError) as info:
        check(body, **kwargs)
    return info.value


def test_a_good_document_passes():
    doc = check(doc_bytes())
    assert doc["serial"] == 7
    assert doc["steps"] == [{"id": "hello", "cmd": "echo hi"}]


def test_role_wide_document_and_unknown_fields_are_fine():
    target = {"role": "web"}
    assert check(doc_bytes(target=target, future_field={"x": 1}))["target"] == target


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        (b'{"a": 1, "a": 2}', "duplicate key"),
        (b'{"a": {"b": 1, "b": 1}}', "duplicate key"),
        (b'{"a": NaN}', "NaN"),
        (b'{"a": [Infinity]}', "Infinity"),
        (b'{"a": -Infinity}', "Infinity"),
        (b'{"a": 1e999}', "out of range"),
        (b"\xef\xbb\xbf{}", "byte-order mark"),
        (b'{"a": "\xff"}', "not UTF-8"),
        ('{"a": 1}'.encode("utf-16"), "not UTF-8"),
        (b"[]", "not one JSON object"),
        (b'"text"', "not one JSON object"),
        (b"{} {}", "not JSON"),
        (b"", "not JSON"),
        (b"{'a': 1}", "not JSON"),
        (b'{"a": 1,}', "not JSON"),
        (b'{"a": ' + b"1" * 5000 + b"}", "not usable JSON"),
    ],
)
def test_strict_json(body: bytes, fragment: str):
    with pytest.raises(DocumentError, match=fragment) as info:
        parse_strict(body)
    assert info.value.code == "invalid_document"


def nested(levels: int) -> bytes:
    """An object `levels` deep: the outermost object is level 1."""
    return b'{"a":' * (levels - 1) + b"{}" + b"}" * (levels - 1)


def test_depth_64_is_fine_65_is_not():
    assert parse_strict(nested(64))
    assert parse_strict(b'{"a":' + b"[" * 63 + b"1" + b"]" * 63 + b"}")
    with pytest.raises(DocumentError, match="deeper than 64"):
        parse_strict(nested(65))
    with pytest.raises(DocumentError, match="deeper than 64"):
        parse_strict(b'{"a":' + b"[" * 64 + b"]" * 64 + b"}")


def test_very_deep_nesting_is_refused_not_a_crash():
    with pytest.raises(DocumentError, match="deeper than 64"):
        parse_strict(b"[" * 200_000 + b"]" * 200_000)


@pytest.mark.parametrize(
    "field", ["apiVersion", "kind", "serial", "issued_at", "expires_at", "target", "steps"]
)
def test_required_fields(field: str):
    doc = make_doc()
    del doc[field]
    error = refused(json.dumps(doc).encode())
    assert (error.code, str(error)) == ("invalid_document", f"required field {field!r} is missing")


@pytest.mark.parametrize(
    "overrides",
    [
        {"apiVersion": "vmprep/v2"},
        {"kind": "StatusReport"},
        {"target": {"instance_id": IDENTITY.instance_id}},
        {"target": {"role": 5}},
        {"target": "web"},
        {"target": {"role": "web", "instance_id": 12}},
        {"steps": {"id": "x"}},
        {"variables": []},
        {"secrets": {"a": 1}},
        {"secrets": "x"},
    ],
)
def test_bad_fields(overrides: dict[str, Any]):
    assert refused(doc_bytes(**overrides)).code == "invalid_document"


@pytest.mark.parametrize(
    "serial", ['"7"', "true", "false", "null", "7.0", "7e0", "0", "-1", "9007199254740992", "1.5"]
)
def test_serial_must_be_an_integer_literal_in_range(serial: str):
    body = doc_bytes(serial=999_999).replace(b"999999", serial.encode())
    error = refused(body)
    assert (error.code, str(error)) == (
        "invalid_document",
        "serial must be a JSON integer from 1 to 2^53-1",
    )


@pytest.mark.parametrize("serial", [1, 2**53 - 1])
def test_serial_bounds_are_inclusive(serial: int):
    assert check(doc_bytes(serial=serial))["serial"] == serial


def test_a_bad_step_refuses_the_whole_document():
    steps = [{"id": "good", "cmd": "echo"}, {"id": "bad", "bogus": 1}]
    error = refused(doc_bytes(steps=steps))
    assert error.code == "invalid_document"
    assert "steps[1]" in str(error)


def test_duplicate_step_ids_are_refused():
    steps = [{"id": "a", "cmd": "echo"}, {"id": "a", "cmd": "echo"}]
    assert refused(doc_bytes(steps=steps)).code == "invalid_document"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2027-01-15T08:00:00Z", NOW),
        ("2027-01-15T08:00:00.250Z", NOW + 0.25),
        ("2027-01-15T09:30:00+01:30", NOW),
        ("2027-01-15T06:00:00-02:00", NOW),
        ("2027-01-15T07:59:60Z", NOW),  # a leap second
        ("2027-01-15T08:00:00.000000001Z", NOW + 1e-9),
    ],
)
def test_rfc3339_times(text: str, expected: float):
    assert parse_time(text, "t") == pytest.approx(expected)


@pytest.mark.parametrize(
    "text",
    [
        "2027-01-15t08:00:00Z",
        "2027-01-15T08:00:00z",
        "2027-01-15 08:00:00Z",
        "2027-01-15T08:00:00",
        "2027-01-15T08:00Z",
        "2027-01-15T08:00:00+0100",
        "2027-01-15T08:00:00+24:00",
        "2027-02-30T08:00:00Z",
        "2027-01-15T25:00:00Z",
        "2027-01-15T08:00:00.Z",
        "0000-01-01T00:00:00Z",
        "２０２７-01-15T08:00:00Z",
        1800000000,
        None,
    ],
)
def test_bad_times(text: Any):
    with pytest.raises(DocumentError) as info:
        parse_time(text, "issued_at")
    assert info.value.code == "invalid_document"
    assert "issued_at" in str(info.value)


def test_issued_after_expires_is_refused():
    body = doc_bytes(issued_at="2027-01-15T09:00:00Z", expires_at="2027-01-15T08:00:00Z")
    error = refused(body)
    assert (error.code, str(error)) == ("invalid_document", "issued_at is after expires_at")


@pytest.mark.parametrize(
    ("offset", "code"),
    [
        (-299, None),
        (-301, "not_yet_valid"),
        (3600 + 299, None),
        (3600 + 301, "expired"),
    ],
)
def test_time_window_allows_five_minutes_of_skew(offset: float, code: str | None):
    body = doc_bytes(issued_at="2027-01-15T08:00:00Z", expires_at="2027-01-15T09:00:00Z")
    if code is None:
        assert check(body, now=NOW + offset)
    else:
        assert refused(body, now=NOW + offset).code == code


def test_expired_document_is_refused():
    body = doc_bytes(issued_at="2026-01-01T00:00:00Z", expires_at="2026-01-02T00:00:00Z")
    assert refused(body).code == "expired"


def test_document_for_another_instance_or_role():
    other = doc_bytes(target={"role": "web", "instance_id": "someone-else"})
    assert refused(other).code == "wrong_target"
    assert refused(doc_bytes(), role="db").code == "wrong_target"


def test_replay_rules():
    body = doc_bytes(serial=7)
    digest = hashlib.sha256(body).hexdigest()
    assert check(body, accepted=(7, digest))["serial"] == 7  # the same document again
    assert check(body, accepted=(6, "x" * 64))["serial"] == 7  # newer
    assert refused(body, accepted=(8, "x" * 64)).code == "replay"  # older serial
    changed = doc_bytes(serial=7, variables={"site": "other"})
    assert refused(changed, accepted=(7, digest)).code == "replay"  # same serial, other bytes


@given(st.binary(max_size=300))
def test_arbitrary_bytes_never_escape_as_other_errors(body: bytes):
    codes = []
    try:
        check(body)
    except DocumentError as exc:
        codes.append(exc.code)
    assert codes in ([], ["invalid_document"])


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)


@given(
    steps=st.lists(
        _json | st.fixed_dictionaries({"id": _json}, optional={"cmd": _json}), max_size=4
    ),
    target=_json,
    serial=_json,
)
def test_arbitrary_json_fields_are_refused_cleanly(steps, target, serial):
    body = json.dumps(make_doc(steps=steps, target=target, serial=serial)).encode()
    codes = []
    try:
        check(body)
    except DocumentError as exc:
        codes.append(exc.code)
    assert set(codes) <= {"invalid_document", "wrong_target"}
