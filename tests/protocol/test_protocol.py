"""vmprep.protocol: the forms the agent and the rest of vmprep share (one owner each)."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vmprep.protocol.canonical import canonical_json
from vmprep.protocol.keys import key_id, public_form, raw_public_key
from vmprep.protocol.timestamps import format_rfc3339, is_rfc3339, parse_rfc3339


@given(st.integers(min_value=0, max_value=253402300799))  # up to 9999-12-31T23:59:59Z
def test_a_formatted_time_parses_back_to_the_same_second(epoch: int) -> None:
    text = format_rfc3339(epoch)
    assert is_rfc3339(text)
    assert parse_rfc3339(text) == epoch
    assert text == dt.datetime.fromtimestamp(epoch, dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


@pytest.mark.parametrize(
    ("text", "epoch"),
    [
        ("2026-11-25T10:00:00Z", 1795600800.0),
        ("2026-11-25T11:30:00+01:30", 1795600800.0),
        ("2026-11-25T08:00:00-02:00", 1795600800.0),
        ("2026-11-25T10:00:00.25Z", 1795600800.25),
        ("2016-12-31T23:59:60Z", 1483228800.0),  # a leap second: one after 23:59:59
    ],
)
def test_rfc3339_forms(text: str, epoch: float) -> None:
    assert parse_rfc3339(text) == pytest.approx(epoch)


@pytest.mark.parametrize(
    "text",
    [
        "2026-11-25 10:00:00Z",  # no T
        "2026-11-25t10:00:00z",  # lower case
        "2026-11-25T10:00:00",  # no zone
        "2026-13-25T10:00:00Z",  # month 13
        "2026-11-25T10:00:00+25:00",  # offset out of range
        "2026-11-25T10:00:00Z\n",
        "２０２６-11-25T10:00:00Z",  # non-ASCII digits
    ],
)
def test_not_rfc3339(text: str) -> None:
    with pytest.raises(ValueError, match=r"RFC 3339|out of range|month"):
        parse_rfc3339(text)


@given(st.binary(min_size=32, max_size=32))
def test_the_public_form_round_trips_and_names_its_key_id(raw: bytes) -> None:
    text = public_form(raw)
    assert text == "ed25519:" + base64.b64encode(raw).decode()
    assert raw_public_key(text) == raw
    assert key_id(raw) == hashlib.sha256(raw).hexdigest()[:16]


@pytest.mark.parametrize(
    "text",
    [
        "ed25519:" + base64.b64encode(bytes(31)).decode(),
        "ed25519:" + base64.b64encode(bytes(33)).decode(),
        "ED25519:" + base64.b64encode(bytes(32)).decode(),
        "ed25519:" + base64.b64encode(bytes(32)).decode() + "=",
        "ed25519:" + base64.urlsafe_b64encode(b"\xff" * 32).decode(),
        "ed25519: " + base64.b64encode(bytes(32)).decode(),
        None,
    ],
)
def test_not_the_public_form(text: object) -> None:
    assert raw_public_key(text) is None


@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(),
        lambda inner: st.lists(inner) | st.dictionaries(st.text(), inner),
    )
)
def test_canonical_json_is_one_byte_string_per_value(value: object) -> None:
    data = canonical_json(value)
    assert json.loads(data) == value
    if isinstance(value, dict):
        shuffled = dict(reversed(list(value.items())))
        assert canonical_json(shuffled) == data


def test_canonical_json_sorts_keys_drops_spaces_and_keeps_utf8() -> None:
    assert canonical_json({"b": 1, "a": [1, "é"]}) == '{"a":[1,"é"],"b":1}'.encode()
