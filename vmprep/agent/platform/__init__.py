"""What differs between Windows and POSIX, behind one interface (`base.Platform`)."""

from __future__ import annotations

import os
from pathlib import Path

from vmprep.agent.platform.base import Platform

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing is not imported at run time: it costs start-up time
    from typing import Any


def current(
    state_dir: Path, options: dict[str, Any], image_os: str = "", cloud: str = "generic"
) -> Platform:
    """The platform this agent runs on (`cloud`: agent.json's image.platform)."""
    if os.name == "nt":
        from vmprep.agent.platform.winplatform import WindowsPlatform

        return WindowsPlatform(state_dir, options, image_os, cloud)
    from vmprep.agent.platform.posix import PosixPlatform

    return PosixPlatform(state_dir, options, image_os, cloud)
