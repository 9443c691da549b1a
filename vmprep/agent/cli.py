"""The agent's command line: `run`, `status`, `--version` (argparse; the boot path stays lean)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import NoReturn

USAGE_ERROR = 64  # not 2: `status` uses 2 for "running"


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(USAGE_ERROR, f"{self.prog}: error: {message}\n")


def _parser() -> argparse.ArgumentParser:
    from vmprep import __version__

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
    st = sub.add_parser("status", help="progress from the state file")
    st.add_argument(
        "--config", type=Path, help="agent.json (its directory is the default state dir)"
    )
    st.add_argument("--state-dir", type=Path)
    st.add_argument("--wait", action="store_true", help="block until done, failed or the timeout")
    st.add_argument("--timeout", help="e.g. 30m (default: no limit)")
    st.add_argument("--format", choices=("text", "json"), default="text")
    return parser


def _state_dir(args: argparse.Namespace) -> Path:
    if args.state_dir is not None:
        return Path(args.state_dir)
    if args.config is not None:
        return Path(args.config).resolve().parent
    return Path(sys.argv[0]).resolve().parent if sys.argv[0].endswith(".pyz") else Path.cwd()


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command == "run":
        from vmprep.agent.run import run_agent

        return run_agent(args.config, args.state_dir, lock_timeout=args.lock_timeout)
    from vmprep.agent.durations import parse_duration
    from vmprep.agent.status import status

    try:
        timeout = None if args.timeout is None else parse_duration(args.timeout)
    except ValueError as exc:
        parser.error(str(exc))
    code, text = status(_state_dir(args), wait=args.wait, timeout=timeout, fmt=args.format)
    print(text)
    return code
