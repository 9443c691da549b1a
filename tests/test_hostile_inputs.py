"""Hostile secrets, control characters, URLs, numbers and directory walks (issue #13), each
class generated rather than listed."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vmprep import cli
from vmprep.problems import ref_name
from vmprep.render.secrets import MAX_PASSWORD, SCRUBBED, password_problem
from vmprep.secretfile import read_secret_file
from vmprep.spec.discover import expand_paths
from vmprep.spec.model import check_bytes, check_data
from vmprep.spec.urls import header_problem, url_problem

BASE = {"version": 1, "image": {"name": "t"}}
CONTROLS = st.sampled_from([chr(c) for c in [*range(32), *range(0x7F, 0xA0)]])


# --- control characters --------------------------------------------------------------------
def step_fields(text: str) -> list[dict[str, object]]:
    return [
        {"id": "a", "exec": {"argv": ["x.exe", text]}},
        {"id": "b", "env": {"name": "X", "value": text}},
        {"id": "c", "registry": {"key": "HKLM\\SOFTWARE\\X", "name": text, "value": "v"}},
        {"id": "d", "service": {"name": text}},
        {"id": "e", "exec": {"argv": ["x.exe"], "env": {text: "v"}}},  # a key
    ]


@given(st.text("ab", max_size=3), CONTROLS, st.text("ab", max_size=3), st.integers(0, 4))
def test_a_control_character_in_any_single_line_field_is_refused(
    before: str, control: str, after: str, which: int
) -> None:
    step = step_fields(before + control + after)[which]
    problems = check_data({**BASE, "agent": {"steps": [step]}})
    assert "control-character" in {p.code for p in problems}


@given(st.text("ab\t\r\n", max_size=20))
def test_scripts_take_tab_and_newline(script: str) -> None:
    steps = [{"id": "a", "cmd": "echo " + script}, {"id": "b", "powershell": "x " + script}]
    problems = check_data({**BASE, "agent": {"steps": steps}})
    assert "control-character" not in {p.code for p in problems}


@given(st.integers(8192, 20000))
def test_cmd_lines_over_cmd_exes_limit_are_refused(n: int) -> None:
    steps = [{"id": "a", "cmd": "echo ok\r\necho " + "x" * n}]
    problems = check_data({**BASE, "agent": {"steps": steps}})
    assert any("8,191" in p.message for p in problems)


# --- URLs and headers -----------------------------------------------------------------------
HOSTS = st.sampled_from(["example.com", "xn--80ak6aa92e.com", "a.b.example"])
USERINFO = st.sampled_from(["u@", "u:p@", ":p@", "user%40x:pw@", "@"])
NON_ASCII_HOST = st.sampled_from(["аpple.com", "exämple.com", "例え.jp", "ｅｘａｍｐｌｅ.com"])


@given(st.sampled_from(["https", "http"]), USERINFO, HOSTS)
def test_user_info_is_refused_in_every_url(scheme: str, userinfo: str, host: str) -> None:
    assert url_problem(f"{scheme}://{userinfo}{host}/x", schemes=("http", "https")) is not None


@given(NON_ASCII_HOST)
def test_hosts_only_as_a_labels(host: str) -> None:
    assert url_problem(f"https://{host}/x") is not None


@given(HOSTS, CONTROLS | st.sampled_from([" ", "\\", "\u2028"]), st.integers(8, 20))
def test_controls_anywhere_in_a_url_are_refused(host: str, bad: str, at: int) -> None:
    url = f"https://{host}/path/to/file"
    at = min(at, len(url))
    assert url_problem(url[:at] + bad + url[at:]) is not None


@given(st.text("ab", min_size=1, max_size=5), st.sampled_from(["\r\n", "\n", "\r", "\x00"]))
def test_header_values_cannot_start_a_new_header(value: str, bad: str) -> None:
    assert header_problem("X-Test", value + bad + "Evil: 1") is not None
    assert header_problem("X-Test" + bad, value) is not None


# --- numbers ---------------------------------------------------------------------------------
@given(st.integers(0, 100))
def test_a_float_in_an_integer_field_is_refused(n: int) -> None:
    text = f"version: 1\nimage: {{name: t}}\nagent: {{steps: [{{id: a, reboot: {{}}, retries: {n}.0}}]}}\n"
    problems = check_bytes(text.encode(), "f.yaml")
    assert any(f"{n}.0 is not a whole number: write {n}" in p.message for p in problems)


def test_version_1_0_is_refused() -> None:
    problems = check_bytes(b"version: 1.0\nimage: {name: t}\n", "f.yaml")
    assert any("1.0 is not a whole number" in p.message for p in problems)


@given(st.sampled_from(["0755", "0017", "0x1F", "yes", "no", "on", "Off", "1_000"]))
def test_yaml_1_1_numbers_and_booleans_in_variables_are_flagged(text: str) -> None:
    problems = check_bytes(
        f"version: 1\nimage: {{name: t}}\nagent: {{variables: {{v: {text}}}}}\n".encode(), "f"
    )
    assert "unquoted-string" in {p.code for p in problems}


def test_two_merge_keys_are_a_duplicate_key() -> None:
    text = b"x: &a {n: 1}\ny: &b {m: 1}\nversion: 1\nimage:\n  <<: *a\n  <<: *b\n  name: t\n"
    assert "duplicate-key" in {p.code for p in check_bytes(text, "f")}


# --- secrets ---------------------------------------------------------------------------------
SECRETISH = st.tuples(
    st.text("abcxyz", min_size=2, max_size=6),
    st.text("ABCXYZ", min_size=1, max_size=4),
    st.text("0123456789", min_size=1, max_size=3),
    st.text("!#%&*", max_size=2),
).map(lambda t: "".join(t))


@given(SECRETISH, st.sampled_from(["env", "secret"]), st.sampled_from(["text", "json", "github"]))
@settings(max_examples=30, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_a_reference_that_looks_like_a_secret_is_never_echoed(
    tmp_path_factory: pytest.TempPathFactory, secret: str, kind: str, fmt: str
) -> None:
    spec = tmp_path_factory.mktemp("s") / "spec.yaml"
    doc = {**BASE, "setup": {"administrator": {"password": {kind: secret}}}}
    spec.write_text(json.dumps(doc))
    result = CliRunner().invoke(cli.main, ["validate", "--format", fmt, str(spec)])
    assert secret not in result.stdout + result.stderr
    assert ref_name(kind, secret).startswith("<redacted")


@pytest.mark.parametrize("kind", ["fifo", "proc", "outside", "device"])
def test_secret_files_are_regular_files_inside_the_specs_directory(
    tmp_path: Path, kind: str
) -> None:
    base = tmp_path / "spec"
    base.mkdir()
    if kind == "fifo":
        os.mkfifo(base / "pipe")
        target = "pipe"
    elif kind == "proc":
        target = "/proc/self/environ"
    elif kind == "device":
        target = "/dev/zero"
    else:
        (tmp_path / "other.txt").write_text("x")
        target = "../other.txt"
    result: list[object] = []
    reader = threading.Thread(target=lambda: result.append(read_secret_file(target, base)))
    reader.start()
    reader.join(10)
    assert not reader.is_alive(), "reading the secret file hung"
    text, why = result[0]  # type: ignore[misc]
    assert text is None
    assert why


def test_allow_secret_path_allows_a_directory(tmp_path: Path) -> None:
    (tmp_path / "store").mkdir()
    (tmp_path / "store" / "pw.txt").write_text("x\n")
    (tmp_path / "spec").mkdir()
    target = str(tmp_path / "store" / "pw.txt")
    assert read_secret_file(target, tmp_path / "spec")[0] is None
    assert read_secret_file(target, tmp_path / "spec", [tmp_path / "store"])[0] == "x\n"


@given(
    st.one_of(
        st.sampled_from(["", "\n", "\r\n", "  "]),
        st.integers(MAX_PASSWORD + 1, 1000).map(lambda n: "p" * n),
        st.text("ab", max_size=3).map(lambda s: s + SCRUBBED),
    )
)
def test_unusable_passwords_are_refused(password: str) -> None:
    # A secret file's one trailing line ending is dropped first: "\n" becomes "".
    assert password_problem(password.removesuffix("\n").removesuffix("\r")) is not None


# --- directory walks -------------------------------------------------------------------------
def test_validate_does_not_follow_symlink_loops(tmp_path: Path) -> None:
    deep = tmp_path / "a" / "b"
    deep.mkdir(parents=True)
    (deep / "x.yaml").write_text("version: 1\nimage: {name: t}\n")
    (deep / "loop").symlink_to("..")
    (deep / "self").symlink_to(".")
    for pattern in (f"{tmp_path}/**", f"{tmp_path}/**/*.yaml", str(tmp_path)):
        assert expand_paths([pattern]) == [deep / "x.yaml"]


# --- identifiers -----------------------------------------------------------------------------
LOOKALIKES = {"a": "а", "e": "е", "o": "о", "p": "р", "c": "с", "x": "х"}  # Cyrillic


@given(
    st.text("aeopcx", min_size=2, max_size=12),
    st.integers(0, 11),
    st.sampled_from(["lookalike", "\u200b", "\u200e", "\u00a0", "\u2066"]),
)
def test_confusable_or_invisible_account_names_are_refused(name: str, at: int, kind: str) -> None:
    from vmprep.spec.winrules import identifier_problem

    at = min(at, len(name) - 1)
    bad = LOOKALIKES[name[at]] if kind == "lookalike" else kind
    hostile = (
        name[:at] + bad + name[at + 1 :] if kind == "lookalike" else name[:at] + bad + name[at:]
    )
    if kind == "lookalike" and set(hostile) <= set(LOOKALIKES.values()):
        hostile += "a"  # all-Cyrillic is one script; make it mixed
    assert identifier_problem(hostile) is not None


@given(st.sampled_from(["\\,", '"', "+CN=x", ";", "\\2C", "#"]), st.integers(0, 1))
def test_an_ou_whose_rdn_is_escaped_or_quoted_is_refused(bad: str, where: int) -> None:
    ou = ["OU=Web" + bad + ",DC=corp,DC=com", "OU=Web,DC=corp" + bad + ",DC=com"][where]
    step = {
        "id": "j",
        "join_domain": {
            "domain": "corp.com",
            "ou": ou,
            "credentials": {"user": "u", "password": {"env": "P"}},
        },
    }
    problems = check_data({**BASE, "agent": {"steps": [step]}})
    assert "join-domain" in {p.code for p in problems}
