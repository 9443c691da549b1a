"""vmprep/spec/platforms.py: one rules object per platform, each documented with its sources."""

from __future__ import annotations

from pathlib import Path

import pytest

from vmprep.spec.platforms import AGENT_APPLIED, ANSWER_FILE_ONLY, NAMES, PLATFORMS, rules_for
from vmprep.spec.schema import schema

DOCS = Path(__file__).resolve().parents[2] / "docs" / "platforms"


def test_the_schema_enumerates_exactly_the_platforms_with_generic_as_default():
    platform = schema()["properties"]["image"]["properties"]["platform"]
    assert tuple(platform["enum"]) == NAMES == tuple(PLATFORMS)
    assert platform["default"] == "generic"
    assert rules_for(None).name == "generic"


@pytest.mark.parametrize("name", NAMES)
def test_every_platform_has_a_page_citing_every_source_of_its_rules(name):
    page = (DOCS / f"{name}.md").read_text(encoding="utf-8")
    for rule, url in rules_for(name).sources.items():
        assert url.split("://", 1)[1].rstrip("/") in page, f"{name}: {rule} ({url})"
    assert f"[{name}.md]({name}.md)" in (DOCS / "README.md").read_text(encoding="utf-8")


def test_every_path_a_rule_names_is_a_schema_key():
    props = schema()["properties"]
    paths = [*ANSWER_FILE_ONLY, *(p for r in PLATFORMS.values() for p in r.owned)]
    paths += [("setup", key) for key in AGENT_APPLIED]
    for section, key in paths:
        assert key in props[section]["properties"], (section, key)


@pytest.mark.parametrize("name", NAMES)
def test_rule_clouds_have_no_answer_file_and_own_the_administrator(name):
    rules = rules_for(name)
    cloud = name in ("azure", "aws", "gce")
    assert rules.answer_file is not cloud
    assert (("setup", "administrator") in rules.owned) is cloud
    assert (rules.hook == "setupcomplete") is not cloud
    assert rules.flow("C:\\ProgramData\\vmprep")
    assert rules.debug
