"""Reports in the background (a worker thread around `reportsender.Reporter`), and the network
modules' `logging` routed into the agent's log.

Loaded with the run's first report (as the first step starts): off the path to it.
"""

from __future__ import annotations

from collections.abc import Callable

from vmprep.agent.logs import Log

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing is not imported at run time: it costs start-up time
    from typing import Any


def bridge_logging(log: Log) -> None:
    """Route the `logging` records of the network modules into the agent's redacted log.

    Called where those modules are first used (the report worker, phone home), so `logging`
    stays off the path to the first step."""
    import logging

    class Bridge(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            level = record.levelname.lower()
            log.write(
                level if level in ("debug", "info", "warning", "error") else "error",
                record.getMessage(),
            )

    logger = logging.getLogger("vmprep.agent")
    logger.handlers[:] = [Bridge()]
    logger.setLevel(logging.DEBUG)
    logger.propagate = False


class BackgroundReporter:
    """Sends reports from one worker thread, in order, so no step waits for the network.

    The worker builds the Reporter itself (importing the HTTP stack off the boot path) and
    flushes the spool first. `close` waits for the queue to drain; a report still queued when
    the process is killed is not lost for good: the next run reports the state afresh.
    """

    def __init__(self, make: Callable[[], Any], log: Callable[[str], None]) -> None:
        import queue
        import threading

        self._queue: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self._make = make
        self._log = log
        self._deliver = False
        self._closing = False
        # Reports left in the spool once the worker stopped; None while it still works.
        self.unsent: int | None = None
        self._thread = threading.Thread(target=self._work, name="reports", daemon=True)
        self._thread.start()

    def _work(self) -> None:
        try:
            reporter = self._make()
        except Exception as exc:  # noqa: BLE001 - reports are best effort; the run goes on
            self._log(f"reports disabled: {type(exc).__name__}: {exc}")
            reporter = None
        while True:
            report = self._queue.get()
            try:
                if report is None:
                    if reporter is None or reporter.url is None:
                        self.unsent = 0  # reports are off: nothing will ever send them
                    else:
                        self.unsent = reporter.deliver() if self._deliver else reporter.unsent()
                    return
                if reporter is not None:
                    reporter.send(report)
            except Exception as exc:  # noqa: BLE001 - `send` should never raise; be sure
                self._log(f"report not sent: {type(exc).__name__}: {exc}")
            finally:
                self._queue.task_done()

    def drain(self, timeout: float) -> None:
        """Wait (at most `timeout`) until every queued report has been handled."""
        import time

        deadline = time.monotonic() + timeout
        while self._queue.unfinished_tasks and time.monotonic() < deadline:
            time.sleep(0.02)

    def send(self, report: dict[str, Any]) -> None:
        self._queue.put(report)

    def close(self, timeout: float = 300.0, *, deliver: bool = False) -> None:
        """Send what is queued, then (with `deliver`) the spool under the final budget, and
        stop the worker; waits at most `timeout`. A second call only waits."""
        if self._thread.is_alive() and not self._closing:
            self._closing = True
            self._deliver = deliver
            self._queue.put(None)
        self._thread.join(timeout)
