"""msiexec's own command line: built as one string, by msiexec's quoting rules.

msiexec does not split its command line the way the C runtime does (`CommandLineToArgvW`,
what `subprocess.list2cmdline` targets): a backslash escapes nothing, and a property is
`NAME="value"` with every double quote inside the value doubled ("For sections of text set
apart by literal quotation marks, enclose the section with a second pair of quotation marks":
`PROPERTY="Embedded ""Quotes"" White Space"`, and `PROPERTY=""` clears a property).
https://learn.microsoft.com/windows/win32/msi/command-line-options
So the agent builds the string itself and hands it to CreateProcess unchanged (on Windows
`subprocess` passes a string through as the command line).

Logging (https://learn.microsoft.com/windows/win32/msi/command-line-options, `/L`): `v`
(verbose) and `p` (terminal properties, which `*` includes) write every property value,
`Property(S): NAME = value`. A step whose properties hold a secret therefore logs only
warnings and errors (`/lwe`), and whatever msiexec still wrote is scrubbed of every secret
value the agent knows once msiexec has exited (`scrub_log`). Steps without secrets get the
full verbose log (`/l*v`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

# A command line holds 32,767 characters, the terminating null included (CreateProcessW,
# https://learn.microsoft.com/windows/win32/api/processthreadsapi/nf-processthreadsapi-createprocessw).
MAX_COMMAND_LINE = 32_766
ERROR_INSTALL_ALREADY_RUNNING = 1618  # another installation is in progress
VERBOSE_LOG = "/l*v"
SECRET_SAFE_LOG = "/lwe"  # no v, no p (terminal properties), no c (UI parameters), no *


class MsiCommandError(ValueError):
    """Something that cannot be written on msiexec's command line."""


def quote_value(value: str) -> str:
    """A property value as msiexec reads it: in double quotes, inner quotes doubled."""
    if "\x00" in value:
        raise MsiCommandError("a property value cannot contain a NUL character")
    return '"' + value.replace('"', '""') + '"'


def quote_path(path: str) -> str:
    """A file path in double quotes (Windows file names cannot contain a double quote)."""
    if '"' in path or "\x00" in path:
        raise MsiCommandError(f"{path!r} is not a Windows path (it contains a quote or NUL)")
    return f'"{path}"'


def msi_command_line(
    msiexec: str,
    package: str,
    properties: Mapping[str, str],
    log_path: str,
    *,
    state: str = "present",
    secret_names: frozenset[str] = frozenset(),
) -> str:
    """`"msiexec" /i|/x "package" /qn /norestart /l*v|/lwe "log" NAME="value" ...`.

    Property names are public property names (`[A-Z][A-Z0-9_.]*`, checked before the step
    runs), so they need no quoting; every value is quoted."""
    action = "/i" if state == "present" else "/x"
    log_flags = SECRET_SAFE_LOG if secret_names & set(properties) else VERBOSE_LOG
    parts = [
        quote_path(msiexec),
        action,
        quote_path(package),
        "/qn",
        "/norestart",
        log_flags,
        quote_path(log_path),
    ]
    parts += [f"{name}={quote_value(value)}" for name, value in properties.items()]
    line = " ".join(parts)
    if len(line) > MAX_COMMAND_LINE:
        raise MsiCommandError(
            f"the msiexec command line would be {len(line)} characters; Windows allows "
            f"{MAX_COMMAND_LINE} (shorten the property values)"
        )
    return line


def decode_log(data: bytes) -> tuple[str, str]:
    """The text of an msiexec log and its encoding (UTF-16 with a BOM, else UTF-8, else the
    bytes as Latin-1 so that writing it back changes nothing but what was replaced)."""
    if data[:2] in (b"\xff\xfe", b"\xfe\xff"):
        return data.decode("utf-16"), "utf-16"
    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        return data.decode("latin-1"), "latin-1"


def scrub_text(data: bytes, redact: Callable[[str], str]) -> bytes | None:
    """`data` with every secret replaced (`redact` is the vault's redactor), or None when
    nothing changed."""
    text, encoding = decode_log(data)
    clean = redact(text)
    if clean == text:
        return None
    return clean.encode(encoding)
