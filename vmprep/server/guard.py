"""Slow and greedy clients: deadlines for reading a request, and connection caps (issue 22).

uvicorn has no deadline for receiving a request: its keep-alive timer is reset by every byte,
so a client that trickles header or body bytes holds its connection (and a file descriptor)
for ever, and a thousand of them lock the fleet out (encode/uvicorn#157 is the open request).
nginx closes such clients (`client_header_timeout`, `client_body_timeout`: 60 s by default) and
caps connections per client (`limit_conn`):
https://nginx.org/en/docs/http/ngx_http_core_module.html#client_header_timeout
https://nginx.org/en/docs/http/ngx_http_limit_conn_module.html

`guarded_protocol()` does the same inside `vmprep serve`, so the documented way to run it is
protected without a proxy in front: a subclass of uvicorn's httptools protocol that

- gives each request `header_timeout` seconds from its first byte (or from the connection,
  for the first request) to complete its headers, and `body_timeout` more for its body; a
  client that misses the header deadline gets 408 and is closed, one that misses the body
  deadline is closed (the handler sees a disconnect);
- refuses, with a fast 503 and `Retry-After`, a connection past `max_connections` in all or
  past `max_per_client` from one address (0: no per-address cap, for fleets behind one NAT).

It uses uvicorn's protocol callbacks (`connection_made`, `on_message_begin`,
`on_headers_complete`, `on_message_complete`, `connection_lost`); the tests run it against a
real server, so an uvicorn that changes them fails there, not in the field.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any

from vmprep.server.ratelog import RateLimitedWarning


@dataclass(frozen=True)
class Limits:
    header_timeout: float = 10.0
    body_timeout: float = 30.0
    max_connections: int = 4096
    max_per_client: int = 256  # 0: no cap per address


_refused = RateLimitedWarning("refusing connections: %s")
_expired = RateLimitedWarning("closing slow clients: %s")


def _answer(status: bytes, message: str, extra: bytes = b"") -> bytes:
    body = json.dumps({"error": message}).encode("utf-8")
    return (
        b"HTTP/1.1 " + status + b"\r\ncontent-type: application/json\r\n"
        b"content-length: "
        + str(len(body)).encode("ascii")
        + b"\r\n"
        + extra
        + b"connection: close\r\n\r\n"
        + body
    )


def guarded_protocol(limits: Limits) -> type[Any]:
    """A protocol class for `uvicorn.Config(http=...)` enforcing `limits`."""
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

    per_client: dict[str, int] = {}

    class GuardedProtocol(HttpToolsProtocol):
        _timer: asyncio.TimerHandle | None = None
        _counted: str | None = None

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            host = self.client[0] if self.client else "?"
            why = None
            if len(self.connections) > limits.max_connections:
                why = f"{len(self.connections) - 1} connections open (--max-connections)"
            elif limits.max_per_client and per_client.get(host, 0) >= limits.max_per_client:
                why = f"{host} has {limits.max_per_client} open (--max-connections-per-client)"
            if why is not None:
                _refused.warn(why)
                transport.write(
                    _answer(
                        b"503 Service Unavailable",
                        "too many connections; try again later",
                        b"retry-after: 1\r\n",
                    )
                )
                transport.close()
                return
            per_client[host] = per_client.get(host, 0) + 1
            self._counted = host
            self._arm(limits.header_timeout, "headers")

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            host = self._counted
            if host is not None:
                self._counted = None
                left = per_client.get(host, 1) - 1
                if left > 0:
                    per_client[host] = left
                else:
                    per_client.pop(host, None)
            super().connection_lost(exc)

        def on_message_begin(self) -> None:
            super().on_message_begin()
            if self._timer is None:  # a later request on a kept-alive connection
                self._arm(limits.header_timeout, "headers")

        def on_headers_complete(self) -> None:
            self._disarm()
            self._arm(limits.body_timeout, "body")
            super().on_headers_complete()

        def on_message_complete(self) -> None:
            self._disarm()
            super().on_message_complete()

        def _arm(self, seconds: float, phase: str) -> None:
            self._timer = self.loop.call_later(seconds, self._expire, phase)

        def _disarm(self) -> None:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None

        def _expire(self, phase: str) -> None:
            self._timer = None
            if self.transport is None or self.transport.is_closing():
                return
            host = self.client[0] if self.client else "?"
            _expired.warn(f"{host} did not send its request {phase} in time")
            if phase == "headers":
                self.transport.write(_answer(b"408 Request Timeout", "request headers too slow"))
            self.transport.close()

    return GuardedProtocol


def raise_open_file_limit() -> tuple[int, int] | None:
    """Raise the soft limit on open files to the hard one (POSIX); the limits now in force.

    A service manager's default soft limit (systemd: 1024) is far below what a fleet's
    concurrent fetches need, and the hard limit is there to be used:
    https://www.freedesktop.org/software/systemd/man/latest/systemd.exec.html#LimitNOFILE="""
    try:
        import resource
    except ImportError:  # Windows: no such limit
        return None
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 20)
    if soft < target:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError):
            pass
    return soft, hard
