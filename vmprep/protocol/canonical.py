"""Canonical JSON: one byte sequence per value, for digests that must not depend on key order
or spacing (the server's document digest, the agent's step hash).

Keys sorted, no whitespace (`,` and `:`), non-ASCII written as UTF-8 rather than escaped.
"""

from __future__ import annotations

import json

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing is not imported at run time: it costs start-up time
    from typing import Any


def canonical_json(value: Any) -> bytes:
    """The canonical UTF-8 bytes of a JSON value."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode(
        "utf-8"
    )
