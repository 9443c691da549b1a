"""The computer-name rule, shared by `vmprep validate` (setup.computer_name, rename_computer)
and by the agent, which checks a rename_computer name again once its placeholders are filled.

Windows takes a computer name as both a NetBIOS name and a DNS host label: ASCII letters,
digits and hyphens, not only digits, no hyphen at either end, at most 15 characters
(https://learn.microsoft.com/en-us/troubleshoot/windows-server/active-directory/naming-conventions-for-computer-domain-site-ou,
https://learn.microsoft.com/en-us/windows-hardware/customize/desktop/unattend/microsoft-windows-shell-setup-computername).
Standard library only, Python 3.8.
"""

from __future__ import annotations

COMPUTER_NAME_MAX = 15
_ALLOWED = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-")


def computer_name_problem(name: str) -> str | None:
    """Why `name` cannot be a computer name, or None. `*` asks Windows for a random name."""
    if name == "*":
        return None
    if not name:
        return "is empty (write '*' for a random name)"
    bad = sorted(set(name) - _ALLOWED)
    if bad:
        shown = ", ".join(_char(c) for c in bad[:5]) + (", ..." if len(bad) > 5 else "")
        return f"contains {shown}; a computer name has only ASCII letters, digits and '-'"
    if len(name) > COMPUTER_NAME_MAX:
        return f"is {len(name)} characters long; a computer name has at most {COMPUTER_NAME_MAX}"
    if name.isdigit():
        return "is only digits; a computer name needs a letter or '-'"
    if name.startswith("-") or name.endswith("-"):
        return "starts or ends with '-', which a DNS host name cannot"
    return None


def _char(c: str) -> str:
    if c == " ":
        return "a space"
    return repr(c) if c.isprintable() and c.isascii() else f"U+{ord(c):04X}"
