from __future__ import annotations

import textwrap

import pytest

from vmprep.problems import Problem
from vmprep.spec.pipeline import check_bytes


def check(text: str, file: str = "spec.yaml") -> list[Problem]:
    return check_bytes(textwrap.dedent(text).encode("utf-8"), file)


@pytest.fixture
def problems():
    return check
