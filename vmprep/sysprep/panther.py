"""Read Sysprep's Panther logs and say why it failed.

Lines look like (`setupact.log`, `setuperr.log` in `%WINDIR%\\System32\\Sysprep\\Panther`):

    2018-09-15 18:08:32, Error      [0x0f0082] SYSPRP ActionPlatform::LaunchModule: Failure ...

time, level (Info / Warning / Error), an optional message code, the component, the message.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from vmprep.sysprep.state import decode_text

PANTHER = "Windows/System32/Sysprep/Panther"
LOGS = ("setuperr.log", "setupact.log")

_LINE = re.compile(
    r"^(?P<time>\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}),\s+(?P<level>[A-Za-z]+)\s+"
    r"(?:\[(?P<code>0x[0-9A-Fa-f]+)\]\s+)?(?P<component>\S+)\s+(?P<message>.*)$"
)


@dataclass(frozen=True)
class LogLine:
    file: str
    number: int  # 1-based line number within the part of the file that was read
    time: str
    level: str
    code: str | None
    component: str
    message: str

    def __str__(self) -> str:
        code = f" [{self.code}]" if self.code else ""
        return f"{self.time}, {self.level}{code} {self.component} {self.message}"


@dataclass(frozen=True)
class Cause:
    id: str
    summary: str
    hint: str
    evidence: tuple[str, ...] = ()


@dataclass(frozen=True)
class Diagnosis:
    lines: tuple[LogLine, ...]  # the lines that matter, oldest first
    causes: tuple[Cause, ...]
    logs: tuple[Path, ...]  # the logs that were read


# Besides Error and Warning lines, Info lines that can still name a cause. Every other line is
# skipped unparsed, which keeps a 30 MB setupact.log fast (benchmarks/sysprep.py).
_NOTABLE = (
    ", error",
    ", warning",
    "pending",
    "bitlocker",
    "provisioned for all users",
    "0x80310039",
)


def parse_log(
    text: str, file: str = "setupact.log", *, notable_only: bool = False
) -> list[LogLine]:
    """Every line in Panther's format (with `notable_only`, only those that can matter)."""
    lines = []
    raws = text.splitlines()
    numbers: Iterable[int] = range(len(raws))
    if notable_only:
        lowered = text.lower().splitlines()
        numbers = [i for i, low in enumerate(lowered) if any(k in low for k in _NOTABLE)]
    for index in numbers:
        number, raw = index + 1, raws[index]
        match = _LINE.match(raw.strip())
        if match:
            lines.append(
                LogLine(
                    file,
                    number,
                    match["time"],
                    match["level"],
                    match["code"],
                    match["component"],
                    match["message"].strip(),
                )
            )
    return lines


_APPX = re.compile(r"(?P<package>\S+) was installed for a user, but not provisioned for all users")
_BITLOCKER = re.compile(r"BitLocker is on for the OS volume|0x80310039", re.IGNORECASE)
_PENDING = re.compile(
    r"Failed to query pending CBS operations|File operations pending|pending operations",
    re.IGNORECASE,
)
_PROVIDER = re.compile(
    r"Could not load DLL (?P<dll>[^;,\s\[]+)"
    r"|Failure occurred while executing '(?P<what>[^']+)'(?: from (?P<from>[^;,\s\[]+))?",
    re.IGNORECASE,
)
# Providers whose failure a specific cause above already explains.
_EXPLAINED_BY = {"appx": "appxsysprep.dll", "bitlocker": "bdesysprep.dll", "pending": "spopk.dll"}
_EXTERNAL_KEY = "HKLM\\SOFTWARE\\Microsoft\\Windows\\CurrentVersion\\Setup\\SysPrepExternal"


def _dll_of(match: re.Match[str]) -> str:
    name = match["dll"] or match["from"] or (match["what"] or "").split(",")[0]
    return re.split(r"[\\/]", name)[-1]


def find_causes(lines: Iterable[LogLine]) -> list[Cause]:
    lines = list(lines)
    packages: dict[str, None] = {}
    found: dict[str, list[str]] = {}
    providers: dict[str, list[str]] = {}
    for line in lines:
        if m := _APPX.search(line.message):
            packages[m["package"]] = None
            found.setdefault("appx", []).append(str(line))
        elif _BITLOCKER.search(line.message):
            found.setdefault("bitlocker", []).append(str(line))
        elif _PENDING.search(line.message):
            found.setdefault("pending", []).append(str(line))
        if line.level.casefold() == "error" and (m := _PROVIDER.search(line.message)):
            providers.setdefault(_dll_of(m), []).append(str(line))
    causes = []
    if "appx" in found:
        causes.append(
            Cause(
                "appx",
                "AppX package(s) installed for a user but not provisioned for all users: "
                + ", ".join(packages),
                "remove them: `vmprep sysprep --check --fix-appx SPEC` (or Remove-AppxPackage "
                "-AllUsers -Package NAME), and keep the Store from updating apps",
                tuple(found["appx"]),
            )
        )
    if "bitlocker" in found:
        causes.append(
            Cause(
                "bitlocker",
                "BitLocker / device encryption is on for the OS volume (0x80310039)",
                "manage-bde -off C: and wait until the volume is Fully Decrypted",
                tuple(found["bitlocker"]),
            )
        )
    if "pending" in found:
        causes.append(
            Cause(
                "pending",
                "Windows servicing operations are pending",
                "reboot until no update or servicing operation is pending, then run again",
                tuple(found["pending"]),
            )
        )
    explained = {_EXPLAINED_BY[c.id] for c in causes}
    for dll, evidence in providers.items():
        if dll.casefold() in explained:
            continue
        hint = (
            f"a sysprep provider failed; update or remove the software that registered {dll} "
            f"under {_EXTERNAL_KEY}"
        )
        if dll.casefold() == "vmagentdisabler.dll":
            hint = (
                "the Azure VM agent's sysprep provider failed: wait until RdAgent and "
                "WindowsAzureGuestAgent are running before sysprep, or reinstall the agent"
            )
        causes.append(
            Cause("provider", f"external sysprep provider {dll} failed", hint, tuple(evidence))
        )
    return causes


def read_log(path: Path, offset: int = 0) -> str:
    """The log text written after `offset` (the whole file when it shrank: a new log)."""
    try:
        data = path.read_bytes()
    except OSError:
        return ""
    if 0 < offset <= len(data) and not data.startswith((b"\xff\xfe", b"\xfe\xff")):
        data = data[offset:]
    return decode_text(data)


def last_line(root: Path, tail: int = 4096) -> str | None:
    """The newest non-empty line of setupact.log, for progress; None when there is none."""
    path = root / PANTHER / "setupact.log"
    try:
        with path.open("rb") as handle:
            handle.seek(max(0, path.stat().st_size - tail))
            data = handle.read()
    except OSError:
        return None
    lines = [line.strip() for line in decode_text(data).splitlines() if line.strip()]
    return lines[-1] if lines else None


def log_sizes(root: Path) -> dict[str, int]:
    """Sizes before a run, so that the diagnosis reads only what this run wrote."""
    sizes = {}
    for name in LOGS:
        path = root / PANTHER / name
        sizes[name] = path.stat().st_size if path.is_file() else 0
    return sizes


def diagnose(root: Path, offsets: Mapping[str, int] | None = None, limit: int = 25) -> Diagnosis:
    offsets = offsets or {}
    logs = []
    errors: list[LogLine] = []
    every: list[LogLine] = []
    for name in LOGS:
        path = root / PANTHER / name
        if not path.is_file():
            continue
        logs.append(path)
        parsed = parse_log(read_log(path, offsets.get(name, 0)), name, notable_only=True)
        every.extend(parsed)
        if name == "setuperr.log" or not errors:
            errors.extend(line for line in parsed if line.level.casefold() in ("error", "warning"))
    causes = find_causes(every)
    evidence = {e for cause in causes for e in cause.evidence}
    shown = [*errors, *(line for line in every if str(line) in evidence)]
    unique: dict[str, LogLine] = {}
    for line in shown:
        unique.setdefault(str(line), line)
    lines = list(unique.values())
    return Diagnosis(tuple(lines[-limit:]), tuple(causes), tuple(logs))
