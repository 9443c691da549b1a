"""Warnings that a misbehaving or hostile client can trigger, at most one line a second."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

log = logging.getLogger("vmprep.server")


class RateLimitedWarning:
    """Logs `message % detail` at most once per `every` seconds; says how many it held back."""

    def __init__(
        self, message: str, every: float = 1.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.message = message
        self.every = every
        self.clock = clock
        self._next = 0.0
        self._held = 0
        self._lock = threading.Lock()

    def warn(self, detail: str) -> bool:
        """True when a line was written, False when it was only counted."""
        with self._lock:
            now = self.clock()
            if now < self._next:
                self._held += 1
                return False
            held, self._held = self._held, 0
            self._next = now + self.every
        suffix = f" (and {held} more since the last such line)" if held else ""
        log.warning(self.message + suffix, detail)
        return True
