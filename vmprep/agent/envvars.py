"""Environment variables as Windows treats them: list variables (`Path`), `%NAME%` expansion
and the block a new process gets. Pure functions: the platforms read and write the values.

- A value never expands its own variable: `Path = %Path%;C:\\tools` stored in the registry is
  that literal text, so every folder of the old `Path` (System32 among them) is lost from the
  next process on (#19). List variables are edited by entry instead (`append`, `prepend`,
  `remove`), and a value that names its own variable is refused.
- A new process's block, as Windows builds it for a logon (CreateEnvironmentBlock): the system
  variables, then the user's, each `REG_EXPAND_SZ` value expanded against what is defined so
  far, unknown `%NAME%` left as written, names compared without case, and `Path` the machine
  value followed by the user's.
  https://learn.microsoft.com/en-us/windows/win32/procthread/environment-variables
  https://learn.microsoft.com/en-us/windows/win32/shell/user-environment-variables
  https://learn.microsoft.com/en-us/windows/win32/api/userenv/nf-userenv-createenvironmentblock
  https://learn.microsoft.com/en-us/windows/win32/api/processenv/nf-processenv-expandenvironmentstringsw
"""

from __future__ import annotations

import re

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing is not imported at run time: it costs start-up time
    from collections.abc import Iterable, Mapping

MODES = ("set", "append", "prepend", "remove")
_REF = re.compile(r"%([^%=]+)%")
# Windows joins these user values to the machine value instead of replacing it.
JOINED = ("path", "libpath", "os2libpath")


def references_itself(name: str, value: str) -> bool:
    """Whether `value` holds `%name%` (any case): a variable that cannot expand itself."""
    folded = name.casefold()
    return any(m.group(1).casefold() == folded for m in _REF.finditer(value))


def _entries(value: str | None, sep: str) -> list[str]:
    return [e for e in (value or "").split(sep) if e.strip()]


def _key(entry: str, ignore_case: bool) -> str:
    """How two entries compare: trimmed, without a trailing slash, case-insensitively on
    Windows (`C:\\Tools\\` and `c:\\tools` are one folder)."""
    text = entry.strip()
    text = text.rstrip("\\/") or text
    return text.casefold() if ignore_case else text


def edit_list(
    current: str | None, entries: str, mode: str, sep: str = ";", *, ignore_case: bool = True
) -> str:
    """`current` with `entries` (one or more, `sep`-separated) appended, prepended or removed.

    append/prepend add only what is not there yet (an entry already present keeps its place,
    so running the step again changes nothing); remove drops every occurrence. Entries are
    compared as `_key` says; the other entries are left exactly as they were."""
    if mode not in MODES[1:]:
        raise ValueError(f"not a list mode: {mode!r}")
    items = _entries(current, sep)
    present = {_key(e, ignore_case) for e in items}
    wanted: list[str] = []
    for entry in _entries(entries, sep):
        key = _key(entry, ignore_case)
        if key not in {_key(w, ignore_case) for w in wanted}:
            wanted.append(entry.strip())
    if mode == "remove":
        drop = {_key(w, ignore_case) for w in wanted}
        return sep.join(e for e in items if _key(e, ignore_case) not in drop)
    new = [w for w in wanted if _key(w, ignore_case) not in present]
    return sep.join([*items, *new] if mode == "append" else [*new, *items])


def expand(value: str, env: Mapping[str, str]) -> str:
    """`%NAME%` replaced from `env` (names without case); unknown references stay as written,
    as ExpandEnvironmentStrings leaves them."""
    folded = {k.casefold(): v for k, v in env.items()}

    def sub(match: re.Match[str]) -> str:
        return folded.get(match.group(1).casefold(), match.group(0))

    return _REF.sub(sub, value)


def build_block(
    base: Mapping[str, str],
    machine: Iterable[tuple[str, str, bool]],
    user: Iterable[tuple[str, str, bool]] = (),
) -> dict[str, str]:
    """The environment a new process would get: `base` (the variables the system makes for
    the session, such as SystemRoot and COMPUTERNAME), then the machine variables, then the
    user's. Each value is (name, raw value, expandable); plain values go first within each
    scope, so expandable ones can refer to them. A name keeps its first spelling."""
    block: dict[str, str] = {}
    spelled: dict[str, str] = {}  # folded name -> the name as first spelled
    for name, value in base.items():
        block[spelled.setdefault(name.casefold(), name)] = value
    machine_lists: dict[str, str] = {}
    for is_user, scope in ((False, machine), (True, user)):
        for name, raw, expandable in sorted(scope, key=lambda item: item[2]):
            key = name.casefold()
            value = expand(raw, block) if expandable else raw
            if key in JOINED:
                if is_user and machine_lists.get(key):
                    value = f"{machine_lists[key]};{value}" if value else machine_lists[key]
                elif not is_user:
                    machine_lists[key] = value
            block[spelled.setdefault(key, name)] = value
    return block
