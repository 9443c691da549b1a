"""One strict-JSON hook for agent.json, remote documents and the server's status reports:
a repeated key is refused, each caller with its own error type and message."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vmprep.agent.config import ConfigError, load_config
from vmprep.agent.document import DocumentError, parse_strict
from vmprep.protocol.strictjson import no_duplicate_keys


class Oops(Exception):
    pass


@given(st.dictionaries(st.text(max_size=5), st.integers(), max_size=8))
def test_distinct_keys_load_as_plain_json_does(obj: dict[str, int]) -> None:
    text = json.dumps(obj)
    assert json.loads(text, object_pairs_hook=no_duplicate_keys(Oops)) == json.loads(text)


@pytest.mark.parametrize("text", ['{"a": 1, "a": 1}', '{"x": [{"b": 1, "c": 2, "b": 3}]}'])
def test_a_repeated_key_raises_the_callers_error(text: str) -> None:
    with pytest.raises(Oops, match=r"^duplicate key '[ab]'$"):
        json.loads(text, object_pairs_hook=no_duplicate_keys(Oops))


def test_each_caller_keeps_its_error_type(tmp_path: Path) -> None:
    body = b'{"format": 1, "format": 1}'
    (tmp_path / "agent.json").write_bytes(body)
    with pytest.raises(ConfigError, match="not valid JSON: duplicate key 'format'"):
        load_config(tmp_path / "agent.json")
    with pytest.raises(DocumentError, match="duplicate key 'format'") as caught:
        parse_strict(body)
    assert caught.value.code == "invalid_document"
    reports = pytest.importorskip("vmprep.server.reports")
    hook = reports._strict_object
    with pytest.raises(reports.ReportError, match="duplicate key 'format'"):
        json.loads(body, object_pairs_hook=hook)
