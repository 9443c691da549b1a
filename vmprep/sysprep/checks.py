"""The preflight checks, in the order they are reported. Each id is stable (`--skip-check`)."""

from __future__ import annotations

from pathlib import PureWindowsPath

from vmprep.protocol.floor import MINIMUM
from vmprep.sysprep import probes, state
from vmprep.sysprep.bundled import bundled_runtime
from vmprep.sysprep.install import find_unfinished
from vmprep.sysprep.platform import host_path
from vmprep.sysprep.preflight import CheckContext, CheckResult, check, failed, passed, warned

CBS = "HKLM\\SOFTWARE\\Microsoft\\Windows\\CurrentVersion\\Component Based Servicing"
PENDING_KEYS = (
    (CBS + "\\RebootPending", "Component Based Servicing RebootPending"),
    (CBS + "\\PackagesPending", "Component Based Servicing PackagesPending"),
    (
        "HKLM\\SOFTWARE\\Microsoft\\Windows\\CurrentVersion\\WindowsUpdate\\Auto Update\\"
        + "RebootRequired",
        "Windows Update RebootRequired",
    ),
)
SESSION_MANAGER = "HKLM\\SYSTEM\\CurrentControlSet\\Control\\Session Manager"
SERVICING_PROCESSES = ("trustedinstaller.exe", "tiworker.exe")
SETUPCOMPLETE = "Windows/Setup/Scripts/SetupComplete.cmd"
# The agent's interpreter says its version; this parses on any Python (no f-string).
VERSION_PROBE = "import sys; sys.stdout.write('%d.%d.%d' % tuple(sys.version_info[:3]))"
AZURE_SETUPCOMPLETE2 = "Windows/OEM/SetupComplete2.cmd"  # docs/platforms/azure.md
# Agreed with render in docs/internals.md: an existing SetupComplete.cmd moves here, and
# ours calls it first.
CHAINED_SETUPCOMPLETE = "Windows/Setup/Scripts/SetupComplete.vmprep-chained.cmd"
# Answer files Windows would find by its search order (reference §7), relative to the drive.
ANSWER_FILE_GLOBS = (
    "Windows/Panther/unattend*.xml",
    "Windows/Panther/Unattend/unattend.xml",
    "Windows/Panther/Unattend/autounattend.xml",
    "Windows/System32/Sysprep/unattend.xml",
    "unattend.xml",
    "autounattend.xml",
)


@check("windows")
def on_windows(ctx: CheckContext) -> CheckResult:
    if ctx.platform.is_windows():
        return passed("windows", "running on Windows")
    return failed("windows", "not running on Windows", "run vmprep sysprep on the reference VM")


@check("admin")
def elevated(ctx: CheckContext) -> CheckResult:
    if ctx.platform.is_admin():
        return passed("admin", "running elevated (administrator)")
    return failed(
        "admin", "not running elevated", "run from an elevated prompt (Run as administrator)"
    )


@check("sysprep-exe")
def sysprep_present(ctx: CheckContext) -> CheckResult:
    if any(part.casefold() == "sysnative" for part in ctx.sysprep_exe.parts):
        # Only a 32-bit process sees Sysnative; its writes to System32 land in SysWOW64.
        return failed(
            "sysprep-exe",
            f"a 32-bit Python on 64-bit Windows (sysprep is {ctx.sysprep_exe}): Windows would "
            "redirect the answer file vmprep installs in System32\\Sysprep to SysWOW64",
            "run vmprep with a 64-bit Python",
        )
    if ctx.sysprep_exe.is_file():
        return passed("sysprep-exe", f"found {ctx.sysprep_exe}")
    return failed(
        "sysprep-exe",
        f"no sysprep executable at {ctx.sysprep_exe}",
        "a 32-bit Python does not see System32\\Sysprep; use 64-bit Python or --sysprep-exe",
    )


@check("sysprep-running")
def no_other_sysprep(ctx: CheckContext) -> CheckResult:
    if "sysprep.exe" in ctx.platform.processes():
        return failed(
            "sysprep-running",
            "another sysprep.exe is running (only one may run at a time)",
            "wait for it to finish or end it in Task Manager, then check the image state",
        )
    return passed("sysprep-running", "no other sysprep.exe is running")


@check("image-state")
def image_state_complete(ctx: CheckContext) -> CheckResult:
    current = state.image_state(ctx.platform)
    if current == state.COMPLETE:
        return passed("image-state", f"ImageState is {current}")
    if current is None:
        return failed(
            "image-state",
            "ImageState is unreadable (no registry value, no State.ini)",
            "is this a Windows system drive? check HKLM\\...\\Setup\\State",
        )
    hint = "sysprep needs a fully set-up machine; finish OOBE or rebuild the reference VM"
    if "_RESEAL_TO_" in current:
        hint = "this VM is already sysprepped: capture it as it is, or boot it through setup first"
    return failed("image-state", f"ImageState is {current}, not {state.COMPLETE}", hint)


@check("pending-reboot")
def no_pending_reboot(ctx: CheckContext) -> CheckResult:
    found = [label for key, label in PENDING_KEYS if ctx.platform.reg_key_exists(key)]
    for name in ("PendingFileRenameOperations", "PendingFileRenameOperations2"):
        value = ctx.platform.reg_value(SESSION_MANAGER, name)
        if value and any(str(item).strip() for item in _as_list(value)):
            found.append(f"Session Manager {name}")
    if found:
        return failed(
            "pending-reboot",
            "a reboot is pending: " + ", ".join(found),
            "reboot (repeat until nothing is pending), then run vmprep sysprep again",
            tuple(found),
        )
    return passed("pending-reboot", "no reboot pending")


def _as_list(value: object) -> list[object]:
    return list(value) if isinstance(value, list | tuple) else [value]


@check("servicing")
def no_servicing(ctx: CheckContext) -> CheckResult:
    running = [name for name in SERVICING_PROCESSES if name in ctx.platform.processes()]
    if running:
        return failed(
            "servicing",
            "Windows servicing is running: " + ", ".join(running),
            "wait for Windows Modules Installer to finish (or reboot), then try again",
        )
    return passed("servicing", "no servicing (TrustedInstaller, TiWorker) running")


@check("appx")
def appx_provisioned(ctx: CheckContext) -> CheckResult:
    packages = probes.parse_appx(ctx.facts())
    if not packages:
        return passed("appx", "no AppX package is installed for a user only")
    details = tuple(f"{p.full_name} (users: {', '.join(p.users) or '?'})" for p in packages)
    return failed(
        "appx",
        f"{len(packages)} AppX package(s) installed for a user but not provisioned for all users",
        "remove them with --fix-appx (Remove-AppxPackage -AllUsers); keep the Store from "
        "updating apps on the reference VM",
        details,
    )


@check("bitlocker")
def bitlocker_off(ctx: CheckContext) -> CheckResult:
    volume = probes.parse_bitlocker(ctx.facts())
    if volume.decrypted:
        return passed("bitlocker", "the OS volume is not encrypted")
    return failed(
        "bitlocker",
        f"the OS volume is encrypted or converting (ConversionStatus {volume.conversion_status}, "
        f"{volume.percent:g}% encrypted); sysprep refuses (0x80310039)",
        f"manage-bde -off {ctx.platform.drive}, then wait until manage-bde -status shows "
        "Fully Decrypted",
    )


@check("rearm")
def rearm_left(ctx: CheckContext) -> CheckResult:
    if ctx.sysprep.get("skip_rearm", False):
        return passed("rearm", "not needed (sysprep.skip_rearm is true)")
    remaining = probes.parse_rearm(ctx.facts())
    if remaining > 0:
        return passed("rearm", f"{remaining} rearm(s) left")
    return failed(
        "rearm",
        "no rearm left (RemainingWindowsReArmCount is 0) and sysprep.skip_rearm is false",
        "set sysprep.skip_rearm: true in the spec, or rebuild the reference VM",
    )


@check("cloud-agents")
def cloud_agents_running(ctx: CheckContext) -> CheckResult:
    if ctx.rules.name == "azure":
        return passed("cloud-agents", "checked by azure-agents (image.platform azure)")
    all_services = probes.parse_services(ctx.facts())
    services = {n: s for n, s in all_services.items() if n in probes.AZURE_AGENT_SERVICES}
    stopped = sorted(name for name, status in services.items() if status != "Running")
    if stopped:
        return failed(
            "cloud-agents",
            "cloud agent service(s) present but not running: "
            + ", ".join(f"{n} ({services[n] or 'unknown'})" for n in stopped),
            "start them and wait until they run (Start-Service); sysprep racing them leaves an "
            "undeployable image",
        )
    if services:
        return passed("cloud-agents", "cloud agent service(s) running: " + ", ".join(services))
    return passed("cloud-agents", "no cloud agent service present")


@check("python")
def interpreter_in_image(ctx: CheckContext) -> CheckResult:
    if "embedded" in ctx.agent.get("runtime", {}):
        return bundled_runtime(ctx)
    configured = ctx.agent.get("runtime", {}).get("python")
    python = configured or ctx.platform.interpreter
    where = "agent.runtime.python" if configured else "the interpreter running vmprep"
    if not python:
        return failed(
            "python", "no interpreter for the agent", "set agent.runtime.python in the spec"
        )
    path = host_path(ctx.platform, python)
    if path is None:
        return failed(
            "python",
            f"{python} ({where}) is not on the system drive {ctx.platform.drive}",
            "install Python on the system drive; only it is captured into the image",
        )
    parts = [p.casefold() for p in PureWindowsPath(python).parts[1:]]
    if parts[:1] == ["users"]:
        return failed(
            "python",
            f"{python} ({where}) is under a user profile",
            "install Python for all users (e.g. C:\\Program Files\\Python312); sysprep and "
            "profile clean-up can remove per-user installs",
        )
    if parts[:2] == ["windows", "temp"]:
        return failed(
            "python",
            f"{python} ({where}) is under Windows\\Temp, which image builds clean up",
            "install Python in a permanent place such as C:\\Program Files\\Python312",
        )
    if not path.is_file():
        return failed(
            "python", f"{python} ({where}) does not exist", "install it or fix the spec's path"
        )
    return _interpreter_version(ctx, python, where)


def _interpreter_version(ctx: CheckContext, python: str, where: str) -> CheckResult:
    """The agent refuses an interpreter older than its floor (vmprep/protocol/floor.py) at every
    boot; say so now, on the reference VM, rather than in every instance's first boot."""
    floor = ".".join(map(str, MINIMUM))
    result = ctx.platform.run([python, "-I", "-S", "-c", VERSION_PROBE], timeout=60)
    parts = result.stdout.strip().split(".")
    if result.returncode != 0 or len(parts) != 3 or not all(p.isdigit() for p in parts):
        detail = (result.stderr or result.stdout).strip().splitlines()[-1:] or ["no output"]
        return failed(
            "python",
            f"{python} ({where}) does not run (exit {result.returncode}: {detail[0]})",
            "repair or reinstall it; the agent runs on it at every first boot",
        )
    version = ".".join(parts)
    if tuple(int(p) for p in parts[:2]) < MINIMUM:
        return failed(
            "python",
            f"{python} ({where}) is Python {version}, older than the agent's floor, Python {floor}",
            f"install Python {floor} or newer on the system drive and point "
            "agent.runtime.python at it",
        )
    return passed(
        "python", f"agent interpreter {python} (Python {version}) exists on the system drive"
    )


@check("answer-files")
def no_leftover_answer_files(ctx: CheckContext) -> CheckResult:
    leftovers: list[str] = []
    replaced: list[str] = []
    for pattern in ANSWER_FILE_GLOBS:
        folder, _, name = pattern.rpartition("/")
        base = ctx.platform.root / folder if folder else ctx.platform.root
        if not base.is_dir():
            continue
        for path in base.iterdir():
            rel = path.relative_to(ctx.platform.root).as_posix()
            if _matches(path.name, name):
                (replaced if rel.casefold() in ctx.replaced else leftovers).append(rel)
    setup_key = ctx.platform.reg_value("HKLM\\SYSTEM\\Setup", "UnattendFile")
    if setup_key:
        leftovers.append(f"HKLM\\SYSTEM\\Setup UnattendFile = {setup_key}")
    leftovers, replaced = sorted(set(leftovers)), sorted(set(replaced))
    # An old file where ours goes is backed up and replaced, so Windows cannot use it: a
    # warning. Any other (Setup's Panther cache above all) could be used: a failure.
    if leftovers:
        note = "".join(f" ({rel} is replaced by ours)" for rel in replaced)
        return failed(
            "answer-files",
            f"{len(leftovers)} leftover answer file(s) Windows could use instead of ours",
            "delete them (they may also hold passwords): " + "; ".join(leftovers) + note,
            tuple(leftovers),
        )
    if replaced and not ctx.rules.answer_file:
        return warned(
            "answer-files",
            f"leftover answer file(s) are removed (image.platform {ctx.rules.name} provisions "
            "with its own): " + ", ".join(replaced),
            "nothing to do: they are backed up, put back if Sysprep fails, and deleted with the "
            "backups when it succeeds",
            tuple(replaced),
        )
    if replaced:
        return warned(
            "answer-files",
            "an old answer file is backed up and replaced by ours: " + ", ".join(replaced),
            "nothing to do: sysprep gets ours, a failed run puts the old one back, a "
            "successful one deletes the backup; delete it first if you never want it back "
            "(it may hold passwords)",
            tuple(replaced),
        )
    return passed("answer-files", "no leftover answer file")


def _matches(name: str, pattern: str) -> bool:
    from fnmatch import fnmatch

    return fnmatch(name.casefold(), pattern.casefold())


@check("setupcomplete")
def setupcomplete_chained(ctx: CheckContext) -> CheckResult:
    if ctx.rules.hook == "setupcomplete2":  # Azure: its SetupComplete.cmd calls this one
        if (ctx.platform.root / AZURE_SETUPCOMPLETE2).is_file():
            return warned(
                "setupcomplete",
                "an existing Windows\\OEM\\SetupComplete2.cmd is kept: it moves to "
                "SetupComplete2.vmprep-chained.cmd and ours calls it first",
                None,
            )
        return passed("setupcomplete", "no existing Windows\\OEM\\SetupComplete2.cmd")
    if ctx.rules.hook != "setupcomplete":
        return passed("setupcomplete", f"not used on {ctx.rules.name} (docs/platforms/)")
    if (ctx.platform.root / SETUPCOMPLETE).is_file():
        return warned(
            "setupcomplete",
            "an existing SetupComplete.cmd is kept: it moves to "
            f"{CHAINED_SETUPCOMPLETE.rsplit('/', 1)[1]} and ours calls it first",
            None,
        )
    return passed("setupcomplete", "no existing SetupComplete.cmd")


@check("domain")
def not_domain_joined(ctx: CheckContext) -> CheckResult:
    domain = probes.parse_domain(ctx.facts())
    if domain:
        return warned(
            "domain",
            f"joined to the domain {domain}; sysprep removes the membership",
            "join instances at first boot instead (a join_domain agent step)",
        )
    return passed("domain", "not joined to a domain")


@check("install-record")
def no_unfinished_install(ctx: CheckContext) -> CheckResult:
    record = find_unfinished(ctx.state_dir)
    if record is None:
        return passed("install-record", "no unfinished vmprep install")
    return failed(
        "install-record",
        f"an earlier vmprep install was not finished or restored ({record})",
        "run `vmprep sysprep --restore` first",
    )
