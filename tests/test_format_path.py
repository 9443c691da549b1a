"""The one JSON-path formatter (vmprep/problems.py `format_path`) in its three uses: the JSON
report's `$.a[0].b`, messages' `a[0].b` with long keys cut, and `render --explain`'s sources."""

from __future__ import annotations

from vmprep.problems import Problem, format_path
from vmprep.spec.checks import dotted

PATH = ("agent", "steps", 2, "download", "url")


def test_the_report_and_the_messages_write_the_same_path():
    assert Problem("f", 1, 1, "c", "m", path=PATH).json_path == "$.agent.steps[2].download.url"
    assert dotted(PATH) == format_path(PATH) == "agent.steps[2].download.url"
    assert format_path(()) == ""
    assert format_path((), root="$") == "$"
    assert format_path((0, "a")) == "[0].a"


def test_messages_cut_a_long_key_but_the_json_report_keeps_it_whole():
    key = "k" * 100
    assert dotted(("env", key)) == f"env.{'k' * 40}... (100 characters)"
    assert Problem("f", 1, 1, "c", "m", path=("env", key)).json_path == f"$.env.{key}"
