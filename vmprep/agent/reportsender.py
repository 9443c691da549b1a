"""Status reports (docs/protocol.md "Status reports"): build, POST, spool what cannot be sent.
The thread that calls this off the step path is `reportworker.py`.

- `send` fills `apiVersion`, `kind`, a fresh `report_id`, `instance_id`, `role`,
  `computer_name`, `agent_version` and `sent_at`, redacts every string with the run's redactor,
  and keeps the body under 1 MiB (output tails are cut first, from the oldest end).
- Transient failures (connection, timeout, 408, 429, 5xx) are retried with a smaller budget
  than a fetch so a dead report service never holds the run up: at most 3 attempts in 30 s,
  waits capped at 5 s, each request at most 10 s. After a report could not be sent, the
  service counts as down: for the next 60 s new reports go straight to the spool, then one
  attempt is made (no retries) until one goes through. A dead or black-holed report service
  thus costs a run at most one short attempt a minute.
- Every report is spooled to `spool_dir` first (temp file, fsync, rename; names sort oldest
  first), then the spool is sent oldest first and each file removed once done with; so a
  report in flight when the process dies is sent by the next run (`flush_spool`), with the
  same `report_id`, which the service stores once.
- 400 and 413 mean the service will never take that body: it is dropped (and logged).
- At most 100 reports are kept in the spool; the oldest go first.
- Before the agent exits, `deliver` sends the spool once more, this time with the fetch's retry
  rules (full-jitter waits from `retry.initial` up to `retry.max`, `Retry-After`,
  `retry.attempts` per report) within at most `FINAL_DEADLINE` seconds (or `retry.deadline`
  when shorter), whatever the cool-down says: the run's last report is the one the service
  most needs. What is still unsent after that stays in the spool for the next start.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vmprep.agent.fetch import UrlError, fill_url
from vmprep.agent.http import HttpError, Session
from vmprep.agent.retry import BudgetSpent, Policy, Retrier, Transient
from vmprep.protocol.atomic import write_atomic
from vmprep.protocol.durations import parse_duration
from vmprep.protocol.timestamps import format_rfc3339

if TYPE_CHECKING:
    from vmprep.agent.identity import Identity

log = logging.getLogger("vmprep.agent.reportsender")

API_VERSION = "vmprep/v1"
MAX_BODY = 1024 * 1024
TAIL = 4096
SPOOL_LIMIT = 100
REPORT_ATTEMPTS = 3
REPORT_DEADLINE = 30.0
REPORT_MAX_WAIT = 5.0
REPORT_TIMEOUT = 10.0
REPORT_COOLDOWN = 60.0
FINAL_DEADLINE = 120.0  # the budget of the delivery before exit, in seconds
_REJECTED = frozenset({400, 413})


class _Rejected(Exception):
    """The service refused this body for good."""


def utc_now(now: float) -> str:
    return format_rfc3339(now)


def _redacted(value: Any, redact: Callable[[str], str]) -> Any:
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {k: _redacted(v, redact) for k, v in value.items()}
    if isinstance(value, list):
        return [_redacted(v, redact) for v in value]
    return value


def last_bytes(text: str, limit: int) -> str:
    """The end of `text` that fits in `limit` UTF-8 bytes (never half a character)."""
    raw = text.encode("utf-8", "replace")  # a lone surrogate (undecodable output) -> ?
    if len(raw) <= limit:
        return text
    return raw[len(raw) - limit :].decode("utf-8", "ignore") if limit else ""


def encode(report: dict[str, Any]) -> bytes | None:
    """JSON bytes of at most 1 MiB, cutting output tails (4 KiB, then 256 B, then none)."""
    for keep in (TAIL, 256, 0):
        for step in report.get("steps") or []:
            tail = step.get("output_tail") if isinstance(step, dict) else None
            if isinstance(tail, str):
                step["output_tail"] = last_bytes(tail, keep)
        body = json.dumps(report, ensure_ascii=False, separators=(",", ":")).encode(
            "utf-8", "replace"
        )
        if len(body) <= MAX_BODY:
            return body
    return None


class Reporter:
    def __init__(
        self,
        phone_home: Mapping[str, Any],
        identity: Identity,
        *,
        role: str,
        token: object | None,
        spool_dir: Path,
        agent_version: str,
        redact: Callable[[str], str],
        now: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.identity = identity
        self.role = role
        self.spool_dir = Path(spool_dir)
        self.agent_version = agent_version
        self.redact = redact
        self._now = now
        self._sleep = sleep
        self._down_at: float | None = None  # when a report last failed to go out
        self.url: str | None = None
        template = phone_home.get("report_url")
        if template:
            try:
                self.url = fill_url(template, identity, role)
            except UrlError as exc:
                log.warning("reports disabled: %s", exc)
        try:
            retry = Policy.from_config(phone_home.get("retry"))
            timeout = min(parse_duration(phone_home.get("timeout", "30s")), REPORT_TIMEOUT)
        except (ValueError, TypeError) as exc:
            log.warning("reports disabled: phone_home: %s", exc)
            self.url, retry, timeout = None, Policy(), REPORT_TIMEOUT
        self.policy = Policy(
            attempts=min(REPORT_ATTEMPTS, retry.attempts),
            initial=min(retry.initial, REPORT_MAX_WAIT),
            max=min(retry.max, REPORT_MAX_WAIT),
            deadline=min(retry.deadline or REPORT_DEADLINE, REPORT_DEADLINE),
        )
        self.final_policy = Policy(
            attempts=retry.attempts,
            initial=retry.initial,
            max=retry.max,
            deadline=min(retry.deadline or FINAL_DEADLINE, FINAL_DEADLINE),
        )
        reveal = getattr(token, "reveal", None)
        secret = str(reveal()) if callable(reveal) else (None if token is None else str(token))
        self.session = Session(
            timeout=timeout,
            cafile=phone_home.get("ca_bundle"),
            allow_http=bool(phone_home.get("allow_insecure_http", False)),
            authorization=None if secret is None else "Bearer " + secret,
            auth_urls=[self.url] if self.url else [],
        )
        self.headers = {
            "User-Agent": f"vmprep-agent/{agent_version}",
            "Content-Type": "application/json",
            "Accept": "application/json",
            "Accept-Encoding": "identity",
        }

    def build(self, report: Mapping[str, Any]) -> dict[str, Any]:
        full: dict[str, Any] = {"config_serial": None, "error": None, "steps": [], **report}
        full.update(
            apiVersion=API_VERSION,
            kind="StatusReport",
            report_id=str(uuid.uuid4()),
            instance_id=self.identity.instance_id,
            role=self.role,
            computer_name=self.identity.computer_name,
            agent_version=self.agent_version,
            sent_at=utc_now(self._now()),
        )
        return dict(_redacted(full, self.redact))

    def send(self, report: Mapping[str, Any]) -> bool:
        """True when the report is done with (taken, or refused for good); never raises.

        The report is spooled before it is sent and removed once done with, so a process
        killed mid-send loses nothing: the next run sends it (the same `report_id`, which the
        service stores once).
        """
        try:
            if self.url is None:
                return False
            body = encode(self.build(report))
            if body is None:
                log.warning("report dropped: over %d bytes even without output", MAX_BODY)
                return False
            try:
                path = self._spool(body)
            except OSError as exc:
                log.warning("cannot spool a report (%s); sending it directly", exc)
                return not self._cooling_down() and self._post(body)
            if self._cooling_down():
                return False
            self.flush_spool()  # older reports first, so the service sees them in order
            return not path.exists()
        except Exception as exc:  # noqa: BLE001 - a report must never stop the run
            log.warning("report not sent: %s", self.redact(str(exc)))
        return False

    def _cooling_down(self) -> bool:
        return self._down_at is not None and self._now() - self._down_at < REPORT_COOLDOWN

    def flush_spool(self) -> int:
        """Send spooled reports oldest first; stops at the first that fails. How many went."""
        if self.url is None:
            return 0
        sent = 0
        for path in self._spool_files():
            try:
                body = path.read_bytes()
            except OSError:
                continue
            if not self._post(body):
                break
            path.unlink(missing_ok=True)
            sent += 1
        return sent

    def unsent(self) -> int:
        """How many reports wait in the spool."""
        return len(self._spool_files())

    def deliver(self) -> int:
        """The delivery before exit: the spool, oldest first, under `final_policy` (one
        deadline for all of it, the cool-down ignored). How many reports are still unsent."""
        if self.url is None:
            return 0
        retrier = Retrier(
            self.final_policy,
            sleep=self._sleep,
            now=self._now,
            on_retry=lambda n, wait, why: log.info(
                "report retry %d in %.1fs: %s", n + 1, wait, why
            ),
        )
        for path in self._spool_files():
            try:
                body = path.read_bytes()
            except OSError:
                continue
            if not self._post(body, retrier):
                break
            path.unlink(missing_ok=True)
        return self.unsent()

    def _post(self, body: bytes, retrier: Retrier | None = None) -> bool:
        """True when sent or rejected for good (nothing more to do with it); False to keep it."""
        assert self.url is not None
        url = self.url
        if retrier is None:
            policy = self.policy if self._down_at is None else Policy(1, 0.1, 0.1, None)
            retrier = Retrier(policy, sleep=self._sleep, now=self._now)

        def attempt() -> None:
            try:
                response = self.session.request(
                    "POST", url, headers=self.headers, body=body, max_bytes=64 * 1024
                )
            except HttpError as exc:
                if exc.transient:
                    raise Transient(str(exc)) from None
                raise
            status = response.status
            if 200 <= status < 300:
                return
            if status in (408, 429) or 500 <= status <= 599:
                raise Transient(f"HTTP {status} from {url}", response.header("Retry-After"))
            if status in _REJECTED:
                raise _Rejected(f"HTTP {status} from {url}")
            raise HttpError("unreachable", f"HTTP {status} from {url}")

        try:
            retrier.run(attempt)
        except _Rejected as exc:
            log.warning("report dropped: %s", exc)
            return True
        except (BudgetSpent, HttpError) as exc:
            self._down_at = self._now()
            log.warning("report not sent: %s", exc)
            return False
        self._down_at = None
        return True

    def _spool_files(self) -> list[Path]:
        try:
            return sorted(self.spool_dir.glob("*.json"))
        except OSError:
            return []

    def _spool(self, body: bytes) -> Path:
        self.spool_dir.mkdir(parents=True, exist_ok=True)
        files = self._spool_files()
        last = files[-1].name.partition("-")[0] if files else ""
        # Names sort in spooling order even when the clock steps back (first-boot time sync).
        seq = max(time.time_ns(), int(last) + 1 if last.isdigit() else 0)
        name = f"{seq:020d}-{uuid.uuid4().hex[:8]}.json"
        write_atomic(self.spool_dir / name, lambda f: f.write(body))
        for old in self._spool_files()[:-SPOOL_LIMIT]:
            old.unlink(missing_ok=True)
        return self.spool_dir / name
