"""One HTTP(S) request as docs/protocol.md wants it, on `http.client` alone.

- `timeout` bounds the whole request: connecting (itself at most min(10 s, timeout)), sending,
  the headers and the body. Every read from the socket gets the time left until a monotonic
  deadline, so a server that drips one byte at a time still ends at the deadline.
- The body is read only for 2xx answers (and the JSON error of a 400, 401, 403 or 409, up to 4 KiB;
  a 400/401/403 body that is larger or encoded is dropped), in pieces, and reading stops as soon as
  it passes `max_bytes` (a larger `Content-Length` is refused before reading anything).
- Only `identity` content: `Accept-Encoding: identity` is sent unless the caller sets it, and
  any other `Content-Encoding` is refused.
- TLS is verified against the system store, plus the certificates of `cafile` when given
  (`trust_context`).
- Redirects (301, 302, 303, 307, 308): at most 3 in a row, never from https to http, never to
  http unless `allow_http`. Each hop gets the full timeout. `Authorization` and
  `Vmprep-Attestation` are sent only to the origins (scheme, host, port) of the configured
  `auth_urls`, on any hop. A 303 turns the
  request into a GET without a body; the other codes keep the method and body.
- No proxies (environment proxy variables are ignored: the agent talks to its service directly).

Errors are `HttpError`: `transient` ones (connection refused, timeout, a body cut short, a
certificate not yet valid) are worth a retry; the others carry the protocol's `error.code` of
the refusal.

A certificate that fails verification is retried only when waiting can heal it: "not yet
valid" is what a first-boot clock that is not synchronized yet sees (a VM often starts with
the host's or the image's idea of the time, and Windows sets it later). An unknown CA, a
self-signed certificate, a name that does not match, or an expired certificate will not heal
by waiting: the request is refused at once and the message says which it was.
"""

from __future__ import annotations

import http.client
import io
import socket
import ssl
import time
from collections.abc import Callable, Iterable, Mapping
from email.message import Message
from urllib.parse import urljoin, urlsplit, urlunsplit

REDIRECTS = frozenset({301, 302, 303, 307, 308})
MAX_REDIRECTS = 3
CONNECT_TIMEOUT = 10.0
_CHUNK = 64 * 1024
ERROR_BODY_MAX = 4096
# Sent, like `Authorization`, only to the origins of `auth_urls`: the attestation document is
# a credential while it is valid (docs/agent.md "Attestation").
PRIVATE_HEADERS = frozenset({"vmprep-attestation"})


def trust_context(cafile: str | None) -> ssl.SSLContext:
    """The system's trusted roots (on Windows, the machine's ROOT and CA certificate stores),
    plus the certificates of `cafile`. `create_default_context(cafile=...)` would load the file
    INSTEAD of the system store: a private CA for the config service would then break every
    host that chains to a public root (#19).
    https://docs.python.org/3/library/ssl.html#ssl.SSLContext.load_default_certs"""
    context = ssl.create_default_context()
    if cafile:
        context.load_verify_locations(cafile=cafile)
    return context


class HttpError(Exception):
    """A request that gave no usable answer; `code` is the protocol's error code."""

    def __init__(self, code: str, message: str, *, transient: bool = False) -> None:
        super().__init__(message)
        self.code = code
        self.transient = transient


# OpenSSL's X509_V_ERR_CERT_NOT_YET_VALID (include/openssl/x509_vfy.h;
# https://docs.openssl.org/master/man3/X509_STORE_CTX_get_error/).
CERT_NOT_YET_VALID = 9


def tls_error(url: str, exc: ssl.SSLCertVerificationError) -> HttpError:
    """A failed certificate verification: transient only when the clock may be to blame."""
    reason = exc.verify_message or exc.reason or str(exc)
    if exc.verify_code == CERT_NOT_YET_VALID:
        return HttpError(
            "unreachable",
            f"TLS certificate of {url} is not yet valid ({reason}): this clock may not be "
            "synchronized yet; retrying",
            transient=True,
        )
    return HttpError(
        "unreachable",
        f"TLS verification failed for {url}: {reason}; not retried (waiting does not fix "
        "an untrusted CA, a wrong host name or an expired certificate)",
    )


class Response:
    """An answer (a plain class: `dataclasses` costs start-up time on the identity path)."""

    __slots__ = ("body", "headers", "status", "url")

    def __init__(self, status: int, headers: Message, body: bytes, url: str) -> None:
        self.status = status
        self.headers = headers
        self.body = body
        self.url = url  # the final URL, after redirects

    def __repr__(self) -> str:
        return f"Response(status={self.status}, url={self.url!r}, {len(self.body)} bytes)"

    def header(self, name: str) -> str | None:
        """All values of a header joined with ", " (as a proxy would), or None when absent."""
        values = self.headers.get_all(name)
        if values is None:
            return None
        return ", ".join(str(v) for v in values)


TYPE_CHECKING = False
if TYPE_CHECKING:  # `tuple[...]` at run time needs Python 3.9; the agent's floor is 3.8
    Origin = tuple[str, str, int]


def origin(url: str) -> Origin | None:
    """(scheme, host, port) with the default port filled in; None for a URL without a host."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if not parts.hostname or scheme not in ("http", "https"):
        return None
    return scheme, parts.hostname.lower(), port or (443 if scheme == "https" else 80)


class _DeadlineIO(io.RawIOBase):
    """Reads from a socket, each read bounded by the time left until `deadline`.

    `keep` is the socket's own makefile() reader: holding it open keeps the socket's file
    descriptor alive after the connection object lets go of it (as http.client expects).
    """

    def __init__(
        self, sock: socket.socket, deadline: float, clock: Callable[[], float], keep: io.IOBase
    ) -> None:
        super().__init__()
        self._sock = sock
        self._deadline = deadline
        self._clock = clock
        self._keep = keep

    def close(self) -> None:
        self._keep.close()
        super().close()

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        left = self._deadline - self._clock()
        if left <= 0:
            raise TimeoutError("timed out")
        self._sock.settimeout(left)
        return self._sock.recv_into(buffer)


class _DeadlineResponse(http.client.HTTPResponse):
    deadline = 0.0
    clock: Callable[[], float] = staticmethod(time.monotonic)

    def __init__(self, sock: socket.socket, *args: object, **kwargs: object) -> None:
        super().__init__(sock, *args, **kwargs)  # type: ignore[arg-type]
        self.fp = io.BufferedReader(_DeadlineIO(sock, self.deadline, type(self).clock, self.fp))


class Session:
    """Settings shared by the requests of one fetch (or one report, one identity probe)."""

    def __init__(
        self,
        *,
        timeout: float,
        cafile: str | None = None,
        allow_http: bool = False,
        authorization: str | None = None,
        auth_urls: Iterable[str] = (),
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.timeout = float(timeout)
        self.cafile = cafile
        self.allow_http = allow_http
        self._authorization = authorization
        self._auth_origins = {o for o in map(origin, auth_urls) if o is not None}
        self._clock = clock
        self._context: ssl.SSLContext | None = None

    def __repr__(self) -> str:  # never shows the Authorization value
        return f"Session(timeout={self.timeout}, cafile={self.cafile!r})"

    def _ssl(self) -> ssl.SSLContext:
        if self._context is None:
            try:
                self._context = trust_context(self.cafile)
            except (OSError, ssl.SSLError) as exc:
                raise HttpError(
                    "unreachable", f"cannot load CA bundle {self.cafile}: {exc}"
                ) from None
        return self._context

    def request(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str],
        body: bytes | None = None,
        max_bytes: int,
    ) -> Response:
        """Send, follow redirects, and return the final answer (any status but a redirect)."""
        if origin(url) is None:
            raise HttpError("unreachable", f"not an http(s) URL: {url}")
        if urlsplit(url).scheme.lower() == "http" and not self.allow_http:
            raise HttpError(
                "unreachable", f"refusing plain http ({url}): allow_insecure_http is not set"
            )
        redirects = 0
        while True:
            hop = {"Accept-Encoding": "identity", **headers}
            if origin(url) in self._auth_origins:
                if self._authorization is not None:
                    hop["Authorization"] = self._authorization
            else:  # credentials of the configured service, never for another origin
                hop = {k: v for k, v in hop.items() if k.lower() not in PRIVATE_HEADERS}
            status, message, data = self._hop(method, url, hop, body, max_bytes)
            if status not in REDIRECTS:
                return Response(status, message, data, url)
            url = self._next_hop(url, status, message.get("Location"), redirects)
            redirects += 1
            if status == 303:
                method, body = "GET", None

    def _next_hop(self, url: str, status: int, location: str | None, redirects: int) -> str:
        if not location or not location.strip():
            raise HttpError("redirect", f"HTTP {status} from {url} without a Location")
        if redirects >= MAX_REDIRECTS:
            raise HttpError("redirect", f"more than {MAX_REDIRECTS} redirects in a row at {url}")
        parts = urlsplit(urljoin(url, location.strip()))
        new = urlunsplit((parts.scheme, parts.netloc, parts.path, parts.query, ""))
        scheme = parts.scheme.lower()
        if origin(new) is None:
            raise HttpError("redirect", f"redirect from {url} to an unusable URL {new}")
        if scheme == "http" and (urlsplit(url).scheme.lower() == "https" or not self.allow_http):
            raise HttpError("redirect", f"refusing a redirect from {url} to plain http ({new})")
        return new

    def _hop(
        self, method: str, url: str, headers: Mapping[str, str], body: bytes | None, cap: int
    ) -> tuple[int, Message, bytes]:
        parts = urlsplit(url)
        scheme, host, port = origin(url) or ("", "", 0)
        deadline = self._clock() + self.timeout
        connect = min(CONNECT_TIMEOUT, self.timeout)
        conn: http.client.HTTPConnection
        if scheme == "https":
            conn = http.client.HTTPSConnection(host, port, timeout=connect, context=self._ssl())
        else:
            conn = http.client.HTTPConnection(host, port, timeout=connect)

        class _Response(_DeadlineResponse):
            pass

        _Response.deadline = deadline
        _Response.clock = staticmethod(self._clock)
        conn.response_class = _Response
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        response: http.client.HTTPResponse | None = None
        sent = False
        try:
            conn.connect()
            assert conn.sock is not None
            conn.sock.settimeout(max(deadline - self._clock(), 0.001))
            conn.putrequest(method, target, skip_accept_encoding=True)
            for name, value in headers.items():
                conn.putheader(name, value)
            if body is not None:
                conn.putheader("Content-Length", str(len(body)))
            conn.endheaders(body)
            sent = True
            response = conn.getresponse()
            status = response.status
            data = b""
            if 200 <= status < 300 and status != 204:
                data = _read_body(response, url, cap)
            elif status == 409:  # its JSON error names the refused secrets (docs/protocol.md)
                data = _read_body(response, url, min(cap, ERROR_BODY_MAX))
            elif status in (400, 401, 403):  # its JSON error may say why attestation failed
                try:
                    data = _read_body(response, url, min(cap, ERROR_BODY_MAX))
                except (HttpError, OSError, ValueError, http.client.HTTPException):
                    data = b""  # a large, encoded or cut-off error page: still a refusal
            return status, response.msg, data
        except HttpError:
            raise
        except ssl.SSLCertVerificationError as exc:
            raise tls_error(url, exc) from None
        except (ValueError, http.client.InvalidURL) as exc:
            if not sent:  # a header or URL that http cannot carry: no use retrying
                raise HttpError("unreachable", f"cannot send a request to {url}: {exc}") from None
            detail = f"{type(exc).__name__}: {exc}"  # e.g. a garbled chunk size
            raise HttpError("unreachable", f"{url}: {detail}", transient=True) from None
        except TimeoutError:
            raise HttpError(
                "unreachable", f"timed out after {self.timeout:g}s: {url}", transient=True
            ) from None
        except (OSError, http.client.HTTPException) as exc:
            detail = type(exc).__name__ + (f": {exc}" if str(exc) else "")
            raise HttpError("unreachable", f"{url}: {detail}", transient=True) from None
        finally:
            if response is not None:
                response.close()
            conn.close()


def _read_body(response: http.client.HTTPResponse, url: str, cap: int) -> bytes:
    encoding = (response.getheader("Content-Encoding") or "").strip().lower()
    if encoding not in ("", "identity"):
        raise HttpError("encoding", f"{url} answered with Content-Encoding {encoding!r}")
    header = (response.getheader("Content-Length") or "").strip()
    length = int(header) if header.isascii() and header.isdigit() else None
    if length is not None and length > cap:
        raise HttpError("too_large", f"{url}: Content-Length {length} is over {cap} bytes")
    chunks: list[bytes] = []
    total = 0
    while True:
        chunk = response.read(min(_CHUNK, cap + 1 - total))
        if not chunk:
            if length is not None and total < length and not response.chunked:
                raise HttpError(
                    "unreachable",
                    f"{url}: body cut off at {total} of {length} bytes",
                    transient=True,
                )
            return b"".join(chunks)
        chunks.append(chunk)
        total += len(chunk)
        if total > cap:
            raise HttpError("too_large", f"{url}: body is over {cap} bytes")
