from __future__ import annotations

import contextlib
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vmprep.server.reports import ReportError, parse_report

VALID = {
    "apiVersion": "vmprep/v1",
    "kind": "StatusReport",
    "report_id": "r-1",
    "instance_id": "i-1",
    "role": "web",
    "agent_version": "0.1.0",
    "state": "done",
    "sent_at": "2026-11-25T10:03:12.5+01:00",
    "steps": [{"id": "a", "status": "done", "source": "remote"}],
}

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)


def test_a_valid_report_parses_with_its_time():
    report, sent = parse_report(json.dumps(VALID).encode(), "i-1")
    assert report == VALID
    assert sent == 1795597392.5


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_any_bytes_are_a_report_or_a_report_error(body):
    with contextlib.suppress(ReportError):
        parse_report(body, "i-1")


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(sorted(VALID)), json_values)
def test_any_value_in_any_field_is_accepted_only_when_it_fits(field, value):
    body = json.dumps({**VALID, field: value}).encode()
    try:
        report, _ = parse_report(body, "i-1")
    except ReportError as exc:
        why = str(exc)
    else:
        assert report[field] == value
        assert isinstance(report["steps"], list)
        why = "accepted"
    assert why  # a refusal always says why


def test_deep_nesting_is_refused_not_a_crash():
    body = b'{"a": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    with pytest.raises(ReportError, match="invalid JSON"):
        parse_report(body, "i-1")


@pytest.mark.parametrize(
    "sent_at", ["2026-13-45T10:00:00Z", "2026-11-25T25:00:00Z", "2026-11-25T10:00:00+25:00"]
)
def test_a_well_shaped_but_impossible_sent_at_is_a_report_error_not_a_crash(sent_at):
    with pytest.raises(ReportError, match="not an RFC 3339 time"):
        parse_report(json.dumps({**VALID, "sent_at": sent_at}).encode(), "i-1")


def test_a_leap_second_sent_at_is_read_as_the_agent_reads_document_times():
    _, sent = parse_report(json.dumps({**VALID, "sent_at": "2016-12-31T23:59:60Z"}).encode(), "i-1")
    assert sent == 1483228800.0  # one second after 23:59:59 (vmprep/protocol/timestamps.py)


@pytest.mark.parametrize("field", ["config_serial", "boot", "computer_name", "error"])
@pytest.mark.parametrize("value", [True, False])
def test_a_boolean_is_never_a_valid_optional_field(field, value):
    with pytest.raises(ReportError, match=f"{field} has the wrong type"):
        parse_report(json.dumps({**VALID, field: value}).encode(), "i-1")


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("report_id", "r\x001", "report_id must not contain NUL"),
        ("role", "web\x00", "role must not contain NUL"),
        ("computer_name", "\x00", "computer_name must not contain NUL"),
        ("config_serial", 2**63, "config_serial is out of range"),
        ("config_serial", -1, "config_serial is out of range"),
    ],
)
def test_what_no_store_can_hold_is_refused_for_every_store(field, value, message):
    """PostgreSQL's text holds no NUL and both stores' integers are 64-bit: refused here,
    rather than failing the whole batch of reports it would be written with."""
    with pytest.raises(ReportError, match=message):
        parse_report(json.dumps({**VALID, field: value}).encode(), "i-1")
