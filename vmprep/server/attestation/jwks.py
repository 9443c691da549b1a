"""Google's token-signing keys from a JWKS URL the operator configured, cached.

Only with `--attestation-gce-jwks URL`: fetched on first use, again when the cache is older
than its max-age (the answer's Cache-Control, else an hour), and when a token names a key id
the cache does not hold (at most once a minute: Google publishes a new key before it signs
with it). A failed fetch keeps the keys held before. https://www.googleapis.com/oauth2/v3/certs
is Google's (https://developers.google.com/identity/openid-connect/openid-connect#validatinganidtoken).
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable

from vmprep.server.attestation.anchors import JwtKey, parse_key_set

log = logging.getLogger("vmprep.server")
MAX_BYTES = 256 * 1024
DEFAULT_MAX_AGE = 3600.0
MIN_REFETCH = 60.0


class JwksCache:
    def __init__(
        self, url: str, *, clock: Callable[[], float] = time.time, timeout: float = 5.0
    ) -> None:
        self.url, self.clock, self.timeout = url, clock, timeout
        self._keys: list[JwtKey] = []
        self._fresh_until = 0.0
        self._fetched_at: float | None = None
        self._lock = threading.Lock()

    def keys(self, kid: str | None) -> list[JwtKey]:
        """The cached keys, fetched again when stale, or when `kid` is not among them."""
        now = self.clock()
        with self._lock:
            known = any(k.kid == kid for k in self._keys)
            recent = self._fetched_at is not None and now - self._fetched_at < MIN_REFETCH
            if now >= self._fresh_until or (not known and not recent):
                self._fetch(now)
            return list(self._keys)

    def _fetch(self, now: float) -> None:
        import urllib.error
        import urllib.request

        self._fetched_at = now
        try:
            request = urllib.request.Request(self.url, headers={"Accept": "application/json"})
            with urllib.request.urlopen(request, timeout=self.timeout) as answer:
                body = answer.read(MAX_BYTES + 1)
                max_age = _max_age(answer.headers.get("Cache-Control", ""))
            if len(body) > MAX_BYTES:
                raise ValueError(f"larger than {MAX_BYTES} bytes")
            keys = parse_key_set(body)
        except (OSError, ValueError, urllib.error.URLError) as exc:
            log.warning("cannot fetch the GCE signing keys from %s: %s", self.url, exc)
            return
        self._keys = keys
        self._fresh_until = now + (
            DEFAULT_MAX_AGE if max_age is None else max(max_age, MIN_REFETCH)
        )


def _max_age(value: str) -> float | None:
    found = re.search(r"(?:^|[,\s])max-age=(\d{1,9})", value)
    return float(found.group(1)) if found else None
