"""Checking a StatusReport body (docs/protocol.md "Status reports")."""

from __future__ import annotations

import json
from typing import Any

from vmprep.protocol.strictjson import no_duplicate_keys
from vmprep.protocol.timestamps import parse_rfc3339

MAX_REPORT_BYTES = 1024 * 1024
STATES = ("running", "done", "failed", "halted")
STEP_STATUSES = ("pending", "running", "done", "failed", "skipped", "interrupted")
SOURCES = ("baked", "remote")
_REQUIRED: dict[str, type | tuple[type, ...]] = {
    "apiVersion": str,
    "kind": str,
    "report_id": str,
    "instance_id": str,
    "role": str,
    "agent_version": str,
    "state": str,
    "sent_at": str,
    "steps": list,
}
_OPTIONAL: dict[str, type | tuple[type, ...]] = {
    "computer_name": (str, type(None)),
    "config_serial": (int, type(None)),
    "boot": (int, type(None)),
    "error": (dict, type(None)),
    "inputs": dict,  # deploy-time inputs: {key: {value, source}} (docs/inputs.md)
}


class ReportError(ValueError):
    """Why a report body is refused (answered 400 with this message)."""


_strict_object = no_duplicate_keys(ReportError)


def _no_constant(name: str) -> Any:
    raise ReportError(f"{name} is not JSON")


def parse_time(value: str) -> float:
    try:
        return parse_rfc3339(value)
    except ValueError:  # the wrong shape, or e.g. month 13 or offset +25:00
        raise ReportError(f"sent_at {value!r} is not an RFC 3339 time") from None


def parse_report(body: bytes, instance_id: str) -> tuple[dict[str, Any], float]:
    """The report and its sent_at as epoch seconds, or ReportError."""
    try:
        report = json.loads(
            body.decode("utf-8"), object_pairs_hook=_strict_object, parse_constant=_no_constant
        )
    except UnicodeDecodeError:
        raise ReportError("the body is not UTF-8") from None
    except (json.JSONDecodeError, RecursionError) as exc:
        raise ReportError(f"invalid JSON: {exc}") from None
    if not isinstance(report, dict):
        raise ReportError("the body must be a JSON object")
    for name, kind in _REQUIRED.items():
        if name not in report:
            raise ReportError(f"{name} is required")
        if not isinstance(report[name], kind) or isinstance(report[name], bool):
            raise ReportError(f"{name} has the wrong type")
    for name, kind in _OPTIONAL.items():
        if name in report and (
            not isinstance(report[name], kind) or isinstance(report[name], bool)
        ):
            raise ReportError(f"{name} has the wrong type")
    for name in ("report_id", "role", "agent_version", "computer_name"):
        # A NUL cannot be stored in a PostgreSQL text column: refused here, for every store,
        # rather than failing the whole batch of reports it was written with.
        if isinstance(report.get(name), str) and "\x00" in report[name]:
            raise ReportError(f"{name} must not contain NUL characters")
    serial = report.get("config_serial")
    if serial is not None and not 0 <= serial < 2**63:  # the stores' 64-bit integers
        raise ReportError("config_serial is out of range")
    if report["apiVersion"] != "vmprep/v1":
        raise ReportError(f"apiVersion must be 'vmprep/v1', not {report['apiVersion']!r}")
    if report["kind"] != "StatusReport":
        raise ReportError(f"kind must be 'StatusReport', not {report['kind']!r}")
    if report["instance_id"] != instance_id:
        raise ReportError("instance_id does not match the URL")
    if not 1 <= len(report["report_id"]) <= 128:
        raise ReportError("report_id must be 1 to 128 characters")
    if report["state"] not in STATES:
        raise ReportError(f"state must be one of {', '.join(STATES)}")
    for i, step in enumerate(report["steps"]):
        if not isinstance(step, dict) or not isinstance(step.get("id"), str):
            raise ReportError(f"steps[{i}] must be an object with an id")
        if step.get("status") not in STEP_STATUSES:
            raise ReportError(f"steps[{i}].status must be one of {', '.join(STEP_STATUSES)}")
        if "source" in step and step["source"] not in SOURCES:
            raise ReportError(f"steps[{i}].source must be baked or remote")
    error = report.get("error")
    if error is not None and not (
        isinstance(error.get("code"), str) and isinstance(error.get("message", ""), str)
    ):
        raise ReportError("error must be null or {code, message}")
    return report, parse_time(report["sent_at"])
