"""One request: caps, the whole-request deadline, redirects, Authorization, encodings, TLS."""

from __future__ import annotations

import datetime as dt
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.agent.net.conftest import Pki, Reply, Server, free_port, make_pki
from vmprep.agent.http import HttpError, Session, origin

H = {"Accept-Encoding": "identity"}


def test_plain_get_returns_body_and_final_url(server: Server):
    server.route("/a", Reply(200, b"hello"))
    response = Session(timeout=5, allow_http=True).request(
        "GET", server.url("/a"), headers=H, max_bytes=100
    )
    assert (response.status, response.body, response.url) == (200, b"hello", server.url("/a"))
    assert server.requests[0].headers["accept-encoding"] == "identity"


def test_http_refused_unless_allowed(server: Server):
    with pytest.raises(HttpError) as info:
        Session(timeout=5).request("GET", server.url("/a"), headers=H, max_bytes=100)
    assert not info.value.transient
    assert "allow_insecure_http" in str(info.value)
    assert server.requests == []


def test_body_over_cap_by_content_length_is_refused_before_reading(server: Server):
    server.route("/big", Reply(200, b"x" * 2000))
    with pytest.raises(HttpError) as info:
        Session(timeout=5, allow_http=True).request(
            "GET", server.url("/big"), headers=H, max_bytes=1999
        )
    assert (info.value.code, info.value.transient) == ("too_large", False)


@pytest.mark.parametrize("mode", ["chunked", "no-length"])
def test_body_over_cap_without_length_stops_reading(server: Server, mode: str):
    body = b"y" * 300_000
    server.route("/big", Reply(200, body, chunked=mode == "chunked", send_length=False))
    with pytest.raises(HttpError) as info:
        Session(timeout=5, allow_http=True).request(
            "GET", server.url("/big"), headers=H, max_bytes=100_000
        )
    assert info.value.code == "too_large"


def test_body_exactly_at_cap_is_fine(server: Server):
    server.route("/ok", Reply(200, b"z" * 1024, chunked=True, send_length=False))
    response = Session(timeout=5, allow_http=True).request(
        "GET", server.url("/ok"), headers=H, max_bytes=1024
    )
    assert response.body == b"z" * 1024


@pytest.mark.parametrize("chunked", [False, True])
def test_body_cut_off_midway_is_transient(server: Server, chunked: bool):
    server.route("/cut", Reply(200, b"a" * 5000, cut_after=1200, chunked=chunked))
    with pytest.raises(HttpError) as info:
        Session(timeout=5, allow_http=True).request(
            "GET", server.url("/cut"), headers=H, max_bytes=10_000
        )
    assert info.value.transient


def test_stalled_body_times_out_at_the_whole_request_deadline(server: Server):
    server.route("/stall", Reply(200, b"b" * 100, content_length=1000, stall=10))
    start = time.monotonic()
    with pytest.raises(HttpError) as info:
        Session(timeout=0.5, allow_http=True).request(
            "GET", server.url("/stall"), headers=H, max_bytes=10_000
        )
    assert info.value.transient
    assert "timed out" in str(info.value)
    assert time.monotonic() - start < 3


def test_dripping_server_is_cut_at_the_deadline_not_per_read():
    """One byte every 0.1 s never trips a per-read timeout; the whole-request one must."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    stop = threading.Event()

    def drip() -> None:
        conn, _ = listener.accept()
        conn.recv(65536)
        head = b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n"
        try:
            for byte in head + b"x" * 1000:
                if stop.wait(0.05):
                    break
                conn.sendall(bytes([byte]))
        except OSError:
            pass
        conn.close()

    thread = threading.Thread(target=drip, daemon=True)
    thread.start()
    port = listener.getsockname()[1]
    start = time.monotonic()
    with pytest.raises(HttpError) as info:
        Session(timeout=0.6, allow_http=True).request(
            "GET", f"http://127.0.0.1:{port}/", headers=H, max_bytes=10_000
        )
    elapsed = time.monotonic() - start
    stop.set()
    listener.close()
    assert info.value.transient
    assert elapsed < 1.5


def test_connection_refused_is_transient():
    with pytest.raises(HttpError) as info:
        Session(timeout=2, allow_http=True).request(
            "GET", f"http://127.0.0.1:{free_port()}/", headers=H, max_bytes=10
        )
    assert info.value.transient


@pytest.mark.parametrize("encoding", ["gzip", "br", "deflate", "identity, gzip"])
def test_content_encoding_other_than_identity_is_refused(server: Server, encoding: str):
    server.route("/z", Reply(200, b"\x1f\x8b...", headers=[("Content-Encoding", encoding)]))
    with pytest.raises(HttpError) as info:
        Session(timeout=5, allow_http=True).request(
            "GET", server.url("/z"), headers=H, max_bytes=100
        )
    assert (info.value.code, info.value.transient) == ("encoding", False)


def test_identity_content_encoding_is_fine(server: Server):
    server.route("/z", Reply(200, b"ok", headers=[("Content-Encoding", "identity")]))
    response = Session(timeout=5, allow_http=True).request(
        "GET", server.url("/z"), headers=H, max_bytes=100
    )
    assert response.body == b"ok"


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_redirects_are_followed(server: Server, status: int):
    server.route("/a", Reply(status, headers=[("Location", "/b?x=1")]))
    server.route("/b?x=1", Reply(200, b"there"))
    response = Session(timeout=5, allow_http=True).request(
        "GET", server.url("/a"), headers=H, max_bytes=100
    )
    assert (response.body, response.url) == (b"there", server.url("/b?x=1"))


def test_three_redirects_ok_a_fourth_refused(server: Server):
    for i in range(4):
        server.route(f"/r{i}", Reply(302, headers=[("Location", f"/r{i + 1}")]))
    server.route("/r4", Reply(200, b"end"))
    session = Session(timeout=5, allow_http=True)
    assert session.request("GET", server.url("/r1"), headers=H, max_bytes=9).body == b"end"
    with pytest.raises(HttpError) as info:
        session.request("GET", server.url("/r0"), headers=H, max_bytes=9)
    assert (info.value.code, info.value.transient) == ("redirect", False)
    assert "/r4" not in [r.path for r in server.requests[-4:]]


def test_redirect_without_location_is_refused(server: Server):
    server.route("/a", Reply(302))
    with pytest.raises(HttpError) as info:
        Session(timeout=5, allow_http=True).request("GET", server.url("/a"), headers=H, max_bytes=9)
    assert info.value.code == "redirect"


def test_redirect_from_https_to_http_is_refused(tls_server: Server, server: Server, pki: Pki):
    tls_server.route("/cfg", Reply(302, headers=[("Location", server.url("/cfg"))]))
    server.route("/cfg", Reply(200, b"plain"))
    session = Session(timeout=5, cafile=str(pki.ca_file), allow_http=True)
    with pytest.raises(HttpError) as info:
        session.request("GET", tls_server.url("/cfg"), headers=H, max_bytes=99)
    assert (info.value.code, info.value.transient) == ("redirect", False)
    assert server.requests == []


def test_redirect_to_http_refused_when_http_not_allowed(tls_server: Server, pki: Pki):
    tls_server.route("/cfg", Reply(307, headers=[("Location", "http://127.0.0.1:1/x")]))
    with pytest.raises(HttpError) as info:
        Session(timeout=5, cafile=str(pki.ca_file)).request(
            "GET", tls_server.url("/cfg"), headers=H, max_bytes=99
        )
    assert info.value.code == "redirect"


def test_authorization_only_to_the_configured_origin(server: Server, server2: Server):
    server.route("/a", Reply(302, headers=[("Location", server2.url("/b"))]))
    server2.route("/b", Reply(302, headers=[("Location", server.url("/c"))]))
    server.route("/c", Reply(200, b"back home"))
    session = Session(
        timeout=5, allow_http=True, authorization="Bearer s3cret", auth_urls=[server.url("/a")]
    )
    response = session.request("GET", server.url("/a"), headers=H, max_bytes=99)
    assert response.body == b"back home"
    assert server.requests[0].headers["authorization"] == "Bearer s3cret"
    assert "authorization" not in server2.requests[0].headers
    assert server.requests[1].headers["authorization"] == "Bearer s3cret"
    assert "s3cret" not in repr(session)


def test_303_turns_post_into_get(server: Server):
    server.route("/post", Reply(303, headers=[("Location", "/get")]))
    server.route("/get", Reply(200, b"ok"))
    Session(timeout=5, allow_http=True).request(
        "POST", server.url("/post"), headers=H, body=b"{}", max_bytes=9
    )
    assert [(r.method, r.body) for r in server.requests] == [("POST", b"{}"), ("GET", b"")]


def test_tls_verified_with_ca_bundle(tls_server: Server, pki: Pki):
    tls_server.route("/s", Reply(200, b"secure"))
    session = Session(timeout=5, cafile=str(pki.ca_file))
    assert session.request("GET", tls_server.url("/s"), headers=H, max_bytes=99).body == b"secure"


def test_tls_untrusted_certificate_fails_for_good(tls_server: Server):
    tls_server.route("/s", Reply(200, b"secure"))
    with pytest.raises(HttpError) as info:
        Session(timeout=5).request("GET", tls_server.url("/s"), headers=H, max_bytes=99)
    assert "TLS verification failed" in str(info.value)
    assert "not retried" in str(info.value)
    assert not info.value.transient
    assert tls_server.requests == []


def test_tls_wrong_host_name_fails_for_good(tmp_path: Path):
    other = make_pki(tmp_path, ip="127.0.0.2")  # a certificate for another address
    srv = Server(tls=other.context)
    try:
        srv.route("/s", Reply(200, b"secure"))
        with pytest.raises(HttpError) as info:
            Session(timeout=5, cafile=str(other.ca_file)).request(
                "GET", srv.url("/s"), headers=H, max_bytes=99
            )
    finally:
        srv.close()
    assert not info.value.transient
    assert "mismatch" in str(info.value).lower()
    assert "not retried" in str(info.value)


def test_tls_certificate_not_yet_valid_is_transient(tmp_path: Path):
    """A first-boot clock behind the real time: waiting (time sync) can heal it."""
    early = make_pki(tmp_path, starts_in=dt.timedelta(days=1))
    srv = Server(tls=early.context)
    try:
        srv.route("/s", Reply(200, b"secure"))
        with pytest.raises(HttpError) as info:
            Session(timeout=5, cafile=str(early.ca_file)).request(
                "GET", srv.url("/s"), headers=H, max_bytes=99
            )
    finally:
        srv.close()
    assert info.value.transient
    assert "not yet valid" in str(info.value)
    assert "clock" in str(info.value)


def test_missing_ca_bundle_is_a_clear_error(tls_server: Server, tmp_path):
    with pytest.raises(HttpError) as info:
        Session(timeout=5, cafile=str(tmp_path / "none.pem")).request(
            "GET", tls_server.url("/s"), headers=H, max_bytes=99
        )
    assert "CA bundle" in str(info.value)


def test_error_statuses_are_returned_without_reading_a_body(server: Server):
    server.route("/e", Reply(503, b"x" * 10_000, headers=[("Retry-After", "5")]))
    response = Session(timeout=5, allow_http=True).request(
        "GET", server.url("/e"), headers=H, max_bytes=10
    )
    assert (response.status, response.body, response.header("retry-after")) == (503, b"", "5")


def test_repeated_headers_are_joined(server: Server):
    server.route("/h", Reply(200, b"", headers=[("X-A", "1"), ("X-A", "2")]))
    response = Session(timeout=5, allow_http=True).request(
        "GET", server.url("/h"), headers=H, max_bytes=10
    )
    assert response.header("X-A") == "1, 2"
    assert response.header("X-B") is None


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://Example.COM/x", ("https", "example.com", 443)),
        ("http://example.com:8080", ("http", "example.com", 8080)),
        ("http://[::1]/", ("http", "::1", 80)),
        ("ftp://example.com/", None),
        ("https://example.com:99999/", None),
        ("/relative", None),
    ],
)
def test_origin(url: str, expected):
    assert origin(url) == expected


def test_a_url_http_cannot_carry_is_refused_not_retried(server: Server):
    server.route("/a", Reply(302, headers=[("Location", "/with space")]))
    with pytest.raises(HttpError) as info:
        Session(timeout=5, allow_http=True).request("GET", server.url("/a"), headers=H, max_bytes=9)
    assert not info.value.transient


def test_a_header_value_with_a_newline_is_refused_not_sent(server: Server):
    with pytest.raises(HttpError) as info:
        Session(timeout=5, allow_http=True).request(
            "GET", server.url("/a"), headers={"X-Evil": "a\r\nInjected: 1"}, max_bytes=9
        )
    assert not info.value.transient
    assert server.requests == []


class RawServer:
    """Answers every connection with `payload`, whatever was asked, then closes."""

    def __init__(self) -> None:
        self.payload = b""
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(16)
        self.port = self.listener.getsockname()[1]
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            with conn:
                try:
                    conn.recv(65536)
                    conn.sendall(self.payload)
                    conn.shutdown(socket.SHUT_WR)
                except OSError:
                    pass


@pytest.fixture(scope="module")
def raw_server() -> Iterator[RawServer]:
    srv = RawServer()
    yield srv
    srv.listener.close()


_heads = st.sampled_from(
    [
        b"HTTP/1.1 200 OK\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n",
        b"HTTP/1.1 302 Found\r\n",
        b"HTTP/1.0 404 Nope\r\n",
        b"",
    ]
)


@settings(max_examples=80, deadline=None)
@given(head=_heads, rest=st.binary(max_size=120))
def test_garbage_answers_never_escape_as_other_errors(raw_server: RawServer, head, rest):
    raw_server.payload = head + rest
    session = Session(timeout=2, allow_http=True)
    codes: list[str] = []
    try:
        response = session.request(
            "GET", f"http://127.0.0.1:{raw_server.port}/", headers=H, max_bytes=64
        )
        assert len(response.body) <= 64
    except HttpError as exc:
        codes.append(exc.code)
    assert set(codes) <= {"unreachable", "redirect", "too_large", "encoding"}


def test_every_redirect_hop_gets_the_full_timeout(server: Server):
    """Three slow hops take longer than one timeout together; none does alone."""

    def slow(reply: Reply) -> Callable[[object], Reply]:
        def answer(_seen: object) -> Reply:
            time.sleep(0.4)
            return reply

        return answer

    server.route("/h0", slow(Reply(302, headers=[("Location", "/h1")])))
    server.route("/h1", slow(Reply(302, headers=[("Location", "/h2")])))
    server.route("/h2", slow(Reply(200, b"end")))
    start = time.monotonic()
    response = Session(timeout=0.9, allow_http=True).request(
        "GET", server.url("/h0"), headers=H, max_bytes=9
    )
    assert response.body == b"end"
    assert time.monotonic() - start > 0.9


@pytest.mark.parametrize(("timeout", "connect"), [(30.0, 10.0), (4.0, 4.0)])
def test_connecting_alone_is_bounded_by_the_smaller_of_10s_and_the_timeout(
    server: Server, monkeypatch: pytest.MonkeyPatch, timeout: float, connect: float
):
    import http.client

    seen: list[float | None] = []
    real = http.client.HTTPConnection.connect

    def connect_spy(self: http.client.HTTPConnection) -> None:
        seen.append(self.timeout)
        real(self)

    monkeypatch.setattr(http.client.HTTPConnection, "connect", connect_spy)
    server.route("/a", Reply(200, b"ok"))
    Session(timeout=timeout, allow_http=True).request(
        "GET", server.url("/a"), headers=H, max_bytes=9
    )
    assert seen == [connect]
