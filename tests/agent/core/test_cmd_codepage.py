"""`cmd` scripts in the code page cmd.exe reads them in (#19 item 3)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.agent.core.test_winplatform import Recorder, ctx_for
from vmprep.agent.steps import runner
from vmprep.protocol.codepage import encode_script, oem_code_page, outside

NAME = "dir-ünï-日本"


@pytest.mark.parametrize(
    ("script", "code_page", "expected"),
    [
        ('mkdir "dir-ünï"', 437, b'mkdir "dir-\x81n\x8b"'),
        ('mkdir "dir-ünï"', 850, b'mkdir "dir-\x81n\x8b"'),
        ('mkdir "dir-日本"', 932, b'mkdir "dir-\x93\xfa\x96{"'),
        ('mkdir "dir-привет"', 866, b'mkdir "dir-\xaf\xe0\xa8\xa2\xa5\xe2"'),
        ('mkdir "dir-ünï-日本"', 65001, 'mkdir "dir-ünï-日本"'.encode()),
        ("echo ok", 437, b"echo ok"),
    ],
)
def test_scripts_are_written_in_the_code_page(script: str, code_page: int, expected: bytes):
    assert encode_script(script, code_page) == expected


@pytest.mark.parametrize(("code_page", "missing"), [(437, "日本"), (932, "üï"), (866, "üï日本")])
def test_a_character_outside_the_code_page_is_refused_by_name(code_page: int, missing: str):
    assert "".join(outside(NAME, code_page)) == missing
    with pytest.raises(ValueError, match=f"code page {code_page}: '{missing[0]}'"):
        encode_script(NAME, code_page)


@pytest.mark.parametrize(
    ("locale", "code_page"),
    [("en-US", 437), ("en-GB", 850), ("de-DE", 850), ("ru-RU", 866), ("ja-JP", 932),
     ("zh-CN", 936), ("zh-TW", 950), ("xx-YY", None)],
)  # fmt: skip
def test_oem_code_pages_of_locales(locale: str, code_page: int | None) -> None:
    assert oem_code_page(locale) == code_page


class CodePage(Recorder):
    def __init__(self, tmp: Path, code_page: int) -> None:
        super().__init__(tmp)
        self.code_page = code_page
        self.scripts: list[bytes] = []

    def cmd_code_page(self) -> int:
        return self.code_page

    def run(self, argv, *, timeout=None, env=None, cwd=None, stdin=None):  # type: ignore[override]
        self.scripts.append(Path(argv[-1]).read_bytes())
        return super().run(argv, timeout=timeout, env=env, cwd=cwd, stdin=stdin)


def test_the_windows_cmd_step_writes_the_consoles_code_page(tmp_path: Path) -> None:
    p = CodePage(tmp_path, 850)
    assert runner("cmd")('mkdir "dir-ünï"', ctx_for(p, tmp_path)).ok
    assert p.scripts == [b'mkdir "dir-\x81n\x8b"']


def test_the_windows_cmd_step_refuses_before_running_anything(tmp_path: Path) -> None:
    p = CodePage(tmp_path, 437)
    with pytest.raises(ValueError, match="code page 437"):
        runner("cmd")(f'mkdir "{NAME}"', ctx_for(p, tmp_path))
    assert p.calls == []
    assert not (tmp_path / "tmp").exists() or list((tmp_path / "tmp").iterdir()) == []
