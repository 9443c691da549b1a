"""RFC 3339 date-times as the protocol writes them (docs/protocol.md): `issued_at`,
`expires_at`, a report's `sent_at`, the service's status times.

Written as UTC to the second, `2026-11-25T10:00:00Z`. Read in full RFC 3339 form: upper-case
`T` and `Z` or a `±hh:mm` offset, an optional fraction of a second, and a leap second
(`23:59:60` is one second after `23:59:59`). https://www.rfc-editor.org/rfc/rfc3339#section-5.6
"""

from __future__ import annotations

import re
import time

_PATTERN = (
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})T([0-9]{2}):([0-9]{2}):([0-9]{2})(\.[0-9]+)?"
    r"(Z|[+-][0-9]{2}:[0-9]{2})"
)
FORMAT = "%Y-%m-%dT%H:%M:%SZ"


def _match(value: object) -> re.Match[str] | None:
    # re's own cache compiles the pattern on first use: the agent's log imports this module on
    # its way to the first step, and only writes times there
    return re.fullmatch(_PATTERN, value) if isinstance(value, str) else None


def format_rfc3339(epoch: float) -> str:
    """`epoch` (seconds since 1970, UTC) as `YYYY-MM-DDThh:mm:ssZ`, the fraction dropped."""
    return time.strftime(FORMAT, time.gmtime(epoch))


def is_rfc3339(value: object) -> bool:
    """Has the shape of an RFC 3339 date-time (its fields may still be out of range)."""
    return _match(value) is not None


def parse_rfc3339(value: str) -> float:
    """Seconds since the epoch; ValueError for anything that is not an RFC 3339 date-time
    (the wrong shape, or e.g. month 13 or an offset of +25:00)."""
    import datetime as dt  # only when a time is read: not on the agent's path to its first step

    match = _match(value)
    if match is None:
        raise ValueError(f"not an RFC 3339 date-time: {value!r}")
    year, month, day, hour, minute, second = (int(match.group(i)) for i in range(1, 7))
    fraction, zone = match.group(7), match.group(8)
    leap = 1 if second == 60 else 0  # a leap second: 23:59:60 is 23:59:59 plus one second
    offset = 0
    if zone != "Z":
        zh, zm = int(zone[1:3]), int(zone[4:6])
        if zh > 23 or zm > 59:
            raise ValueError(f"the offset of {value!r} is out of range")
        offset = (zh * 60 + zm) * 60 * (1 if zone[0] == "+" else -1)
    moment = dt.datetime(year, month, day, hour, minute, second - leap, tzinfo=dt.timezone.utc)
    return moment.timestamp() - offset + leap + (float(fraction) if fraction else 0.0)
