"""Machine environment variables in the registry, and what later steps inherit (#19).

Machine variables live in `HKLM\\SYSTEM\\CurrentControlSet\\Control\\Session Manager\\Environment`,
the user's in `HKCU\\Environment`; a value holding `%NAME%` is stored as REG_EXPAND_SZ and
expanded when a process's block is built. A program that changes them broadcasts
WM_SETTINGCHANGE with lParam "Environment" so that running programs (Explorer) reload them.
https://learn.microsoft.com/en-us/windows/win32/procthread/environment-variables
https://learn.microsoft.com/en-us/windows/win32/winmsg/wm-settingchange
https://learn.microsoft.com/en-us/windows/win32/api/winuser/nf-winuser-sendmessagetimeoutw
"""

from __future__ import annotations

import contextlib

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing is not imported at run time: it costs start-up time
    from typing import Any

MACHINE_KEY = r"SYSTEM\CurrentControlSet\Control\Session Manager\Environment"
USER_KEY = "Environment"
_HWND_BROADCAST, _WM_SETTINGCHANGE, _SMTO_ABORTIFHUNG = 0xFFFF, 0x001A, 0x0002
BROADCAST_TIMEOUT_MS = 5000


def read_value(wr: Any, name: str) -> tuple[str | None, int | None]:
    """The raw (unexpanded) machine value of `name` and its registry type, or (None, None)."""
    try:
        with wr.OpenKeyEx(
            wr.HKEY_LOCAL_MACHINE, MACHINE_KEY, 0, wr.KEY_READ | wr.KEY_WOW64_64KEY
        ) as key:
            value, kind = wr.QueryValueEx(key, name)
    except FileNotFoundError:
        return None, None
    return (value if isinstance(value, str) else None), kind


def write_value(wr: Any, name: str, value: str | None, kind: int | None = None) -> None:
    """Set (with `kind`) or, for None, delete the machine value `name`."""
    access = wr.KEY_WRITE | wr.KEY_WOW64_64KEY
    with wr.CreateKeyEx(wr.HKEY_LOCAL_MACHINE, MACHINE_KEY, 0, access) as key:
        if value is None:
            with contextlib.suppress(FileNotFoundError):
                wr.DeleteValue(key, name)
        else:
            wr.SetValueEx(key, name, 0, kind, value)


def value_kind(wr: Any, value: str, existing: int | None) -> int:
    """Keep the registry type a value has (Path is REG_EXPAND_SZ); a new or REG_SZ value that
    now holds `%NAME%` becomes REG_EXPAND_SZ, so that it expands."""
    if existing == wr.REG_EXPAND_SZ or "%" in value:
        return int(wr.REG_EXPAND_SZ)
    return int(wr.REG_SZ)


def read_scope(wr: Any, hive: Any, key_path: str) -> list[tuple[str, str, bool]]:
    """Every string value under an Environment key: (name, raw value, expandable)."""
    values: list[tuple[str, str, bool]] = []
    try:
        key = wr.OpenKeyEx(hive, key_path, 0, wr.KEY_READ | wr.KEY_WOW64_64KEY)
    except FileNotFoundError:
        return values
    with key:
        index = 0
        while True:
            try:
                name, value, kind = wr.EnumValue(key, index)
            except OSError:  # ERROR_NO_MORE_ITEMS
                break
            index += 1
            if kind in (wr.REG_SZ, wr.REG_EXPAND_SZ) and isinstance(value, str):
                values.append((name, value, kind == wr.REG_EXPAND_SZ))
    return values


def broadcast_change() -> bool:  # pragma: no cover - Windows only (the bench runs it)
    """WM_SETTINGCHANGE("Environment") to every top-level window, waiting at most 5 s for a
    hung one; False when it could not be sent (no window station, as in some sessions)."""
    import ctypes
    from ctypes import wintypes

    try:
        user32 = ctypes.WinDLL("user32", use_last_error=True)  # type: ignore[attr-defined]
        send = user32.SendMessageTimeoutW
        send.restype = ctypes.c_ssize_t
        send.argtypes = [
            wintypes.HWND,
            wintypes.UINT,
            wintypes.WPARAM,
            wintypes.LPCWSTR,
            wintypes.UINT,
            wintypes.UINT,
            ctypes.POINTER(ctypes.c_size_t),
        ]
        result = ctypes.c_size_t(0)
        sent = send(
            _HWND_BROADCAST,
            _WM_SETTINGCHANGE,
            0,
            "Environment",
            _SMTO_ABORTIFHUNG,
            BROADCAST_TIMEOUT_MS,
            ctypes.byref(result),
        )
    except (OSError, AttributeError):
        return False
    return bool(sent)
