"""The loader: every hostile or surprising input becomes one clean, placed Problem."""

from __future__ import annotations

import pytest

from vmprep.spec.load import MAX_BYTES, load_bytes, load_file

BOMB = "a: &a [x,x,x,x,x,x,x,x,x]\n" + "".join(
    f"{chr(98 + i)}: &{chr(98 + i)} [" + ",".join([f"*{chr(97 + i)}"] * 9) + "]\n" for i in range(9)
)


@pytest.mark.parametrize(
    ("raw", "code", "line", "col", "words"),
    [
        (b"", "yaml", 1, 1, "empty"),
        (b"# only a comment\n", "yaml", 1, 1, "empty"),
        (b"---\n", "yaml", 1, 1, "empty"),
        (b"- a\n- b\n", "yaml", 1, 1, "must be a mapping, not a list"),
        (b"just text\n", "yaml", 1, 1, "must be a mapping, not a string"),
        (b"a: 1\nb: 2\na: 3\n", "duplicate-key", 3, 1, "duplicate key 'a'"),
        (b"a:\n  b: 1\n  b: 2\n", "duplicate-key", 3, 3, "duplicate key 'b'"),
        (b"a: b\x00c\n", "yaml", 1, 5, "NUL"),
        (b"a: 1\nb: \xff\n", "encoding", 2, 4, "not UTF-8"),
        (b"\xff\xfea\x00:\x00", "encoding", 1, 1, "UTF-16"),
        (b"\x00\x00\xfe\xffa", "encoding", 1, 1, "UTF-16 or UTF-32"),
        (b"a: 1\n\xef\xbb\xbfb: 2\n", "yaml", 2, 1, "byte-order mark"),
        (b"a: b\x07\n", "yaml", 1, 5, "control characters"),
        (b"a: [1, 2\n", "yaml", 2, 1, "invalid YAML"),
        (b"a: 1\n--- \nb: 2\n", "yaml", 2, 1, "single document"),
        (b"a: !!python/object:os.system x\n", "yaml", 1, 4, "!!python/object:os.system"),
        (b"a: !!python/name:os.system\n", "yaml", 1, 4, "not allowed"),
        (b"a: !!binary aGk=\n", "yaml", 1, 4, "!!binary"),
        (b"a: !!set {x}\n", "yaml", 1, 4, "!!set"),
        (b"a: !custom x\n", "yaml", 1, 4, "!custom"),
        (b"a: &x [*x]\n", "yaml", 1, 4, "contains it"),
        (b"a: &x {<<: *x}\n", "yaml", 1, 4, "contains it"),
        (BOMB.encode(), "yaml", 1, 24, "expands to more than"),
        (b"[" * 100 + b"]" * 100, "yaml", 1, 65, "deeper than 64"),
        (b"[" * 5000 + b"]" * 5000, "yaml", 1, 1001, "nesting depth"),
        (b"a: " + b"9" * 30 + b"\n", "yaml", 1, 4, "too large"),
        (b"a: " + b"9" * 5000 + b"\n", "yaml", 1, 4, "has 5000 digits"),
        (b"a: .inf\n", "yaml", 1, 4, "not a finite number"),
        (b"a: .nan\n", "yaml", 1, 4, "not a finite number"),
        (b"no: x\n", "unquoted-string", 1, 1, "key `no` is read as a boolean"),
        (b"1: x\n", "unquoted-string", 1, 1, "key `1` is read as a number"),
        (b"? \n: x\n", "unquoted-string", 1, 2, "an empty key is read as null"),
        (b"? [a]\n: b\n", "yaml", 1, 3, "must be a string"),
        (b"a: 22:22\n", "unquoted-string", 1, 4, "base-60 number 1342"),
        (b"a: 2024-01-01\n", "unquoted-string", 1, 4, "read as a date"),
        (b"a: 2024-13-45\n", "unquoted-string", 1, 4, "read as a date"),
    ],
)
def test_bad_input_is_one_placed_problem(raw, code, line, col, words):
    loaded = load_bytes(raw, "f.yaml")
    assert len(loaded.problems) == 1, loaded.problems
    problem = loaded.problems[0]
    assert (problem.code, problem.line, problem.column) == (code, line, col)
    assert words in problem.message + (problem.hint or "")


def test_a_leading_utf8_bom_is_accepted_and_columns_stay_true():
    loaded = load_bytes(b"\xef\xbb\xbfversion: 1\nimage: {name: x}\n", "f.yaml")
    assert loaded.problems == ()
    assert loaded.position(("version",)) == (1, 1)
    assert loaded.value_position(("image", "name")) == (2, 15)


def test_positions_of_keys_values_and_items():
    loaded = load_bytes(b"a:\n  b: [x, {c: 1}]\n  d: |\n    text\n", "f.yaml")
    assert loaded.position(("a", "b")) == (2, 3)
    assert loaded.value_position(("a", "b")) == (2, 6)
    assert loaded.position(("a", "b", 1, "c")) == (2, 11)
    assert loaded.value_position(("a", "d")) == (3, 6)
    assert loaded.position(("a", "missing", 3)) == (1, 1)  # nearest placed parent


def test_merge_keys_and_aliases_expand_with_explicit_keys_winning():
    loaded = load_bytes(b"base: &b {x: 1, y: 2}\nuse: {<<: *b, y: 3}\nagain: *b\n", "f")
    assert loaded.problems == ()
    assert loaded.data["use"] == {"y": 3, "x": 1}
    assert loaded.data["again"] == {"x": 1, "y": 2}


def test_yaml_11_scalars_are_remembered_for_schema_messages():
    loaded = load_bytes(b"a: no\nb: 'no'\nc: 0o17\nd: 017\ne: ~\n", "f")
    assert loaded.data == {"a": False, "b": "no", "c": "0o17", "d": 15, "e": None}
    assert set(loaded.surprises) == {("a",), ("d",), ("e",)}


def test_the_byte_cap_is_enforced_before_parsing(tmp_path):
    spec = tmp_path / "big.yaml"
    spec.write_bytes(b"a: [" + b"1," * (MAX_BYTES // 2) + b"1]\n")
    problems = load_file(spec).problems
    assert [(p.code, p.line) for p in problems] == [("too-large", 1)]


def test_an_unreadable_path_is_a_problem(tmp_path):
    problems = load_file(tmp_path).problems  # a directory
    assert [p.code for p in problems] == ["file"]
