"""The SetupComplete.cmd path rule: one function, used by validate (cmd-unsafe-path) and render."""

from __future__ import annotations

import pytest

from vmprep.spec.winrules import setupcomplete_path_problem


@pytest.mark.parametrize(
    "path",
    [
        "C:\\Program Files\\Python312\\python.exe",
        "c:\\vmprep",
        "D:\\Tools (x86)\\py+3~1\\python.exe",
    ],
)
def test_safe_paths_pass(path: str) -> None:
    assert setupcomplete_path_problem(path) is None


@pytest.mark.parametrize(
    ("path", "reason"),
    [
        ("é:\\python.exe", "must be on a drive"),  # a drive letter is an ASCII letter
        ("1:\\python.exe", "must be on a drive"),
        ("\\\\server\\share\\python.exe", "must be on a drive"),
        ("python.exe", "must be on a drive"),
        ("C:\\dir\\\\python.exe", "empty path component"),
        ("C:\\Pythön\\python.exe", "contains 'ö'"),
        ("C:\\a\x01b", "contains U+0001"),
        ("C:\\..\\python.exe", "has the component '..'"),
        ("C:\\dir.\\python.exe", "has the component 'dir.'"),
        ("C:\\" + "a" * 240, "longer than 240"),
    ],
)
def test_unsafe_paths_say_why(path: str, reason: str) -> None:
    problem = setupcomplete_path_problem(path)
    assert problem is not None
    assert reason in problem
