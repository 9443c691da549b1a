"""Nothing from a spec reaches the terminal raw (issue #13): control characters, bidirectional
overrides and line breaks are generated in keys, values and file names, and every line of
every text output must still be one of ours."""

from __future__ import annotations

import json
import re
import unicodedata
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vmprep import cli
from vmprep.commands.reporters.problems import MAX_PER_CODE, capped
from vmprep.problems import Problem, printable

UNSAFE = st.one_of(
    st.sampled_from([chr(c) for c in [*range(32), *range(0x7F, 0xA0)]]),  # C0, DEL, C1
    st.sampled_from([chr(c) for c in [*range(0x202A, 0x202F), *range(0x2066, 0x206A)]]),
    st.sampled_from(["\u200b", "\u200e", "\u200f", "\u061c", "\u2028", "\u2029", "\ufeff"]),
)
HOSTILE_TEXT = st.lists(
    st.one_of(UNSAFE, st.sampled_from(["::error ::x", "a", "Ü", "\\", ":", "'", " "])),
    min_size=1,
    max_size=12,
).map("".join)


def raw_unsafe(text: str) -> list[str]:
    return [
        c
        for c in text
        if c not in "\n" and unicodedata.category(c) in ("Cc", "Cf", "Cs", "Zl", "Zp")
    ]


@given(HOSTILE_TEXT)
def test_printable_leaves_nothing_unsafe_and_no_line_break(text: str) -> None:
    out = printable(text)
    assert raw_unsafe(out) == []
    assert "\n" not in out


OUR_LINE = re.compile(
    r"^(\S*spec\.yaml:\d+:\d+: (error|warning): |  hint: |\S*spec\.yaml: \.\.\. )"
)


@settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(HOSTILE_TEXT, HOSTILE_TEXT, st.sampled_from(["text", "github"]))
def test_validate_output_is_only_our_lines(
    tmp_path_factory: object, key: str, value: str, fmt: str
) -> None:
    """A key and a value full of controls, bidi overrides and newlines: every output line is a
    problem line, a hint or a GitHub command we wrote, with nothing unsafe in it."""
    spec = {"version": 1, "image": {"name": "t"}, key: value, "setup": {"computer_name": value}}
    text = yaml.safe_dump(spec, allow_unicode=False)  # escapes in double quotes
    path = Path(str(tmp_path_factory.mktemp("v"))) / "spec.yaml"  # type: ignore[attr-defined]
    path.write_text(text, encoding="utf-8")
    result = CliRunner().invoke(cli.main, ["validate", "--format", fmt, str(path)])
    assert result.exit_code == 1, result.output
    for line in result.stdout.splitlines():
        assert raw_unsafe(line) == [], repr(line)
        if fmt == "text":
            assert OUR_LINE.match(line), repr(line)
        else:
            assert re.match(r"::(error|notice) file=\S*spec\.yaml,", line), repr(line)


def test_a_key_with_a_newline_cannot_forge_a_workflow_command(tmp_path: Path) -> None:
    spec = tmp_path / "spec.yaml"
    spec.write_text('version: 1\nimage: {name: t}\n"x\\n::error file=evil::owned": 1\n')
    result = CliRunner().invoke(cli.main, ["validate", str(spec)])
    assert result.exit_code == 1
    assert not any(line.startswith("::") for line in result.stdout.splitlines())
    assert "x\\n::error" in result.stdout


@given(st.integers(MAX_PER_CODE + 1, 5000))
def test_identical_problems_are_capped_with_a_count_of_the_rest(n: int) -> None:
    problems = [Problem("f.yaml", i + 1, 1, "schema", "expected a string") for i in range(n)]
    shown, rest = capped(problems)
    assert len(shown) == MAX_PER_CODE
    assert rest == {("f.yaml", "schema"): n - MAX_PER_CODE}


@pytest.mark.slow
def test_tens_of_thousands_of_problems_print_a_capped_report(tmp_path: Path) -> None:
    spec = tmp_path / "spec.yaml"
    items = ", ".join(["[]"] * 20_000)
    spec.write_text(f"version: 1\nimage: {{name: t}}\nsetup: {{first_logon_commands: [{items}]}}\n")
    result = CliRunner().invoke(cli.main, ["validate", str(spec)])
    lines = result.stdout.splitlines()
    assert len(lines) < 200
    assert "more (schema) not shown" in lines[-1]
    everything = CliRunner().invoke(cli.main, ["validate", "--format", "json", str(spec)])
    assert json.loads(everything.stdout)["errors"] > 10_000


@given(st.text(min_size=200, max_size=5000, alphabet="abcxyz"))
def test_long_values_are_shortened_with_their_length(key: str) -> None:
    from vmprep.spec.model import check_data

    problems = check_data({"version": 1, "image": {"name": "t"}, key: 1})
    (unknown,) = [p for p in problems if "unknown key" in p.message]
    assert len(unknown.message) < 120
    assert f"({len(key)} characters)" in unknown.message
