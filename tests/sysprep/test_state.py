from __future__ import annotations

import pytest

from tests.sysprep.conftest import set_platform
from vmprep.sysprep import state
from vmprep.sysprep.platform import DirectoryPlatform


@pytest.mark.parametrize(
    "text",
    [
        "[State]\r\nImageState=IMAGE_STATE_COMPLETE\r\n",
        "; comment\n[state]\n imagestate = IMAGE_STATE_COMPLETE \n",
    ],
)
def test_state_ini_is_parsed(text):
    assert state.parse_state_ini(text) == state.COMPLETE


def test_state_ini_outside_its_section_is_ignored():
    assert state.parse_state_ini("[Other]\nImageState=IMAGE_STATE_COMPLETE\n") is None


def test_utf16_state_ini(drive):
    ini = drive / state.STATE_INI
    ini.write_bytes("[State]\r\nImageState=IMAGE_STATE_UNDEPLOYABLE\r\n".encode("utf-16"))
    assert state.read_state_ini(drive) == state.UNDEPLOYABLE


def test_the_registry_wins_over_state_ini(drive):
    assert state.image_state(DirectoryPlatform.load(drive)) == state.COMPLETE
    set_platform(drive, registry={state.STATE_KEY: {"ImageState": state.UNDEPLOYABLE}})
    assert state.image_state(DirectoryPlatform.load(drive)) == state.UNDEPLOYABLE


def test_target_state_follows_the_spec():
    assert state.target_state(generalize=True, oobe=True) == state.GENERALIZE_RESEAL_TO_OOBE
    assert (
        state.target_state(generalize=False, oobe=False) == "IMAGE_STATE_SPECIALIZE_RESEAL_TO_AUDIT"
    )
