"""The agent's command line: `run`, `launch`, `status`, `--version` (the boot path avoids
argparse)."""

from __future__ import annotations

import sys
from pathlib import Path

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing and argparse are not imported on the boot path: start-up time
    import argparse
    from typing import Any, NoReturn

USAGE_ERROR = 64  # not 2: `status` uses 2 for "running"


def _parser() -> argparse.ArgumentParser:
    import argparse

    from vmprep import __version__

    class _Parser(argparse.ArgumentParser):
        def error(self, message: str) -> NoReturn:
            self.print_usage(sys.stderr)
            self.exit(USAGE_ERROR, f"{self.prog}: error: {message}\n")

    parser = _Parser(prog="vmprep-agent", description="The vmprep first-boot agent.")
    parser.add_argument("--version", action="version", version=f"vmprep-agent {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="the whole first-boot job")
    run.add_argument("--config", required=True, type=Path, help="agent.json")
    run.add_argument(
        "--state-dir", type=Path, help="state, logs and spool (default: agent.json's directory)"
    )
    run.add_argument(
        "--lock-timeout", type=float, default=60.0, help="seconds to wait for another agent"
    )
    # `launch`'s fallback only (docs/agent.md): no reboot; no step starts after N seconds
    run.add_argument("--defer-reboots", action="store_true", help=argparse.SUPPRESS)
    run.add_argument("--stop-after", type=float, help=argparse.SUPPRESS)
    launch = sub.add_parser(
        "launch", help="SetupComplete.cmd: start `run` as the startup task and return at once"
    )
    launch.add_argument("--config", required=True, type=Path, help="agent.json")
    st = sub.add_parser("status", help="progress from the state file")
    st.add_argument(
        "--config", type=Path, help="agent.json (its directory is the default state dir)"
    )
    st.add_argument("--state-dir", type=Path)
    st.add_argument("--wait", action="store_true", help="block until done, failed or the timeout")
    st.add_argument("--timeout", help="e.g. 30m (default: no limit)")
    st.add_argument("--interval", help="with --wait: how often to read the state (default 0.5s)")
    st.add_argument("--format", choices=("text", "json"), default="text")
    return parser


def _state_dir(args: argparse.Namespace) -> Path:
    if args.state_dir is not None:
        return Path(args.state_dir)
    if args.config is not None:
        return Path(args.config).resolve().parent
    return Path(sys.argv[0]).resolve().parent if sys.argv[0].endswith(".pyz") else Path.cwd()


_PLAIN = {
    "run": ("--config", "--state-dir", "--lock-timeout", "--stop-after"),
    "launch": ("--config",),
}
_RUN_FLAGS = ("--defer-reboots",)


def _plain_run(argv: list[str]) -> tuple[str, Path, Path | None, dict[str, Any]] | None:
    """`run --config X [--state-dir D] [--lock-timeout N] [--defer-reboots] [--stop-after N]`
    and `launch --config X` without argparse (it costs start-up time on every boot); anything
    else, help and errors included, goes to argparse."""
    if not argv or argv[0] not in _PLAIN:
        return None
    allowed = _PLAIN[argv[0]]
    opts: dict[str, str] = {}
    rest = iter(argv[1:])
    for arg in rest:
        if argv[0] == "run" and arg in _RUN_FLAGS and arg not in opts:
            opts[arg] = ""
            continue
        key, eq, value = arg.partition("=")
        if key not in allowed or key in opts:
            return None
        if not eq:
            value = next(rest, "")
        if not value:
            return None
        opts[key] = value
    if "--config" not in opts:
        return None
    try:
        lock_timeout = float(opts.get("--lock-timeout", "60"))
        stop_after = float(opts["--stop-after"]) if "--stop-after" in opts else None
    except ValueError:
        return None
    state_dir = opts.get("--state-dir")
    config = Path(opts["--config"])
    extra = {
        "lock_timeout": lock_timeout,
        "defer_reboots": "--defer-reboots" in opts,
        "stop_after": stop_after,
    }
    return argv[0], config, None if state_dir is None else Path(state_dir), extra


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    plain = _plain_run(argv)
    if plain is not None and plain[0] == "run":
        from vmprep.agent.run import run_agent

        return run_agent(plain[1], plain[2], **plain[3])
    if plain is not None:
        from vmprep.agent.launch import launch_agent

        return launch_agent(plain[1])
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command == "run":
        from vmprep.agent.run import run_agent

        return run_agent(
            args.config,
            args.state_dir,
            lock_timeout=args.lock_timeout,
            defer_reboots=args.defer_reboots,
            stop_after=args.stop_after,
        )
    if args.command == "launch":
        from vmprep.agent.launch import launch_agent

        return launch_agent(args.config)
    from vmprep.agent.status import status
    from vmprep.protocol.durations import parse_duration

    try:
        timeout = None if args.timeout is None else parse_duration(args.timeout)
        poll = 0.5 if args.interval is None else parse_duration(args.interval)
    except ValueError as exc:
        parser.error(str(exc))
    code, text = status(
        _state_dir(args), wait=args.wait, timeout=timeout, fmt=args.format, poll=poll
    )
    print(text)
    return code
