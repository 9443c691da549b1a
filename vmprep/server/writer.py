"""Reports are written by one thread, in batches: a burst of agents costs one commit per
batch instead of one per report, and neither a write nor a WAL checkpoint's fsync ever holds
up the event loop that answers config fetches."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import threading
from typing import Any

from vmprep.server.fleet import Served
from vmprep.server.ratelog import RateLimitedWarning
from vmprep.server.store import NewReport, Store, StoreUnavailable

log = logging.getLogger("vmprep.server")
MAX_BATCH = 256
_Item = tuple[NewReport, asyncio.AbstractEventLoop, "asyncio.Future[bool]"]
# A document served: recorded for the dashboard, nobody waits for it.
_Any = _Item | Served
_down = RateLimitedWarning("the store is unavailable: %s", every=10.0)


class ReportWriter:
    def __init__(self, store: Store) -> None:
        self.store = store
        self._queue: queue.SimpleQueue[_Any] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._start = threading.Lock()

    async def add(self, item: NewReport) -> bool:
        """True when stored, False for a repeated report_id."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[bool] = loop.create_future()
        self._ensure_thread()
        self._queue.put((item, loop, future))
        return await future

    def served(self, item: Served) -> None:
        """Record a served document in the background (never blocks a fetch)."""
        self._ensure_thread()
        self._queue.put(item)

    def _ensure_thread(self) -> None:
        if self._thread is None:
            with self._start:
                if self._thread is None:
                    self._thread = threading.Thread(
                        target=self._run, name="vmprep-report-writer", daemon=True
                    )
                    self._thread.start()

    def _run(self) -> None:
        while True:
            taken = [self._queue.get()]
            while len(taken) < MAX_BATCH and not self._queue.empty():
                taken.append(self._queue.get())  # only this thread takes from the queue
            served = [item for item in taken if isinstance(item, Served)]
            if served:
                try:
                    self.store.add_served(served)
                except StoreUnavailable as exc:
                    _down.warn(f"{exc} ({len(served)} served document(s) not recorded)")
                except Exception:  # the dashboard misses them; fetches are unaffected
                    log.exception("recording %d served document(s) failed", len(served))
            batch = [item for item in taken if not isinstance(item, Served)]
            if not batch:
                continue
            try:
                results: list[Any] = self.store.add_reports([item for item, _, _ in batch])
            except StoreUnavailable as exc:  # answered 503: the agents send them again
                _down.warn(str(exc))
                results = [exc] * len(batch)
            except Exception as exc:  # each waiting request answers 500; the thread goes on
                log.exception("storing %d report(s) failed", len(batch))
                results = [exc] * len(batch)
            for (_, loop, future), result in zip(batch, results, strict=True):
                with contextlib.suppress(RuntimeError):  # that loop has closed: nobody waits
                    loop.call_soon_threadsafe(_settle, future, result)


def _settle(future: asyncio.Future[bool], result: Any) -> None:
    if future.done():  # the request was cancelled (client gone)
        return
    if isinstance(result, BaseException):
        future.set_exception(result)
    else:
        future.set_result(result)
