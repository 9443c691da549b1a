from __future__ import annotations

from vmprep.commands.reporters.problems import github_line, strict, summary, text_lines, to_json
from vmprep.problems import Problem, Severity

P = Problem("a,b:c.yaml", 3, 5, "schema", "100% wrong\nreally", hint="fix it")
W = Problem("w.yaml", 0, 0, "too-large", "big", Severity.WARNING)


def test_text_has_the_hint_on_its_own_line_and_a_newline_in_a_message_cannot_start_one():
    assert text_lines(P) == "a,b:c.yaml:3:5: error: 100% wrong\\nreally (schema)\n  hint: fix it"


def test_github_escapes_data_and_properties():
    assert github_line(P) == (
        "::error file=a%2Cb%3Ac.yaml,line=3,col=5,title=vmprep (schema)"
        "::100%25 wrong\\nreally%0Ahint: fix it"
    )
    assert github_line(W) == "::warning file=w.yaml,line=1,col=1,title=vmprep (too-large)::big"


def test_summary_counts():
    assert summary([], files=1) == "1 file checked: no problems"
    assert summary([P, P, W], files=3) == "3 files checked: 2 errors, 1 warning"


def test_strict_and_json():
    assert [p.severity for p in strict([W])] == [Severity.ERROR]
    doc = to_json([P, W], files=2)
    assert (doc["errors"], doc["warnings"], len(doc["problems"])) == (1, 1, 2)  # type: ignore[arg-type]
