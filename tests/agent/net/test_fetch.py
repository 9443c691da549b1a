"""The whole fetch against real servers on 127.0.0.1: every row of the outcome table in
docs/protocol.md, the faults of issue 4, the sidecar, URL lists. Sleeps are injected: nothing
waits for real."""

from __future__ import annotations

import email.utils
import hashlib
import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.agent.net.conftest import (
    IDENTITY,
    NOW,
    Clock,
    Pki,
    Reply,
    Seen,
    Server,
    Signer,
    doc_bytes,
    free_port,
)
from vmprep.agent.fetch import FetchOutcome, fetch_config, fill_url, sidecar_url
from vmprep.agent.identity import Identity
from vmprep.agent.secrets import Secret

PATH = f"/v1/config/web/{IDENTITY.instance_id}"
ROLE_PATH = "/v1/config/web/_role"


def config(server: Server, signer: Signer, **overrides: Any) -> dict[str, Any]:
    cfg: dict[str, Any] = {
        "url": [server.url("/v1/config/{role}/{instance_id}")],
        "role": "web",
        "trusted_keys": [signer.public],
        "timeout": "5s",
        "retry": {"attempts": 5, "initial": "1s", "max": "10s", "jitter": "full"},
        "on_unreachable": "continue",
        "max_bytes": 4 * 1024 * 1024,
        "allow_insecure_http": True,
    }
    cfg.update(overrides)
    return cfg


def fetch(cfg: dict[str, Any], clock: Clock, **kwargs: Any) -> FetchOutcome:
    args: dict[str, Any] = {
        "role": "web",
        "token": None,
        "last_completed_serial": None,
        "accepted": None,
        "agent_version": "0.1.0",
    }
    args.update(kwargs)
    return fetch_config(cfg, IDENTITY, now=clock.now, sleep=clock.sleep, **args)


def signed(signer: Signer, body: bytes | None = None, **kwargs: Any) -> Reply:
    body = doc_bytes() if body is None else body
    return Reply(200, body, headers=[("Vmprep-Signature", signer.header(body))], **kwargs)


def refused(outcome: FetchOutcome, code: str) -> None:
    assert (outcome.kind, outcome.error_code) == ("refused", code), outcome.message
    assert outcome.document is None


# -- 200 ------------------------------------------------------------------------------------------
def test_signed_document_is_accepted_and_request_headers_are_right(
    server: Server, signer: Signer, clock: Clock
):
    body = doc_bytes()
    server.route(PATH, signed(signer, body))
    outcome = fetch(config(server, signer), clock, token=Secret("t", "fleet-token"))
    assert outcome.kind == "document"
    assert outcome.document is not None
    assert outcome.document["serial"] == 7
    assert outcome.sha256 == hashlib.sha256(body).hexdigest()
    headers = server.requests[0].headers
    assert headers["user-agent"] == "vmprep-agent/0.1.0"
    assert headers["accept"] == "application/json"
    assert headers["accept-encoding"] == "identity"
    assert headers["vmprep-instance-id"] == IDENTITY.instance_id
    assert headers["vmprep-role"] == "web"
    assert headers["authorization"] == "Bearer fleet-token"
    assert "vmprep-last-serial" not in headers
    assert clock.sleeps == []


def test_last_serial_is_sent_and_no_token_means_no_authorization(
    server: Server, signer: Signer, clock: Clock
):
    server.route(PATH, signed(signer))
    fetch(config(server, signer), clock, last_completed_serial=6)
    assert server.requests[0].headers["vmprep-last-serial"] == "6"
    assert "authorization" not in server.requests[0].headers


def test_the_same_document_again_is_a_document(server: Server, signer: Signer, clock: Clock):
    body = doc_bytes()
    server.route(PATH, signed(signer, body))
    outcome = fetch(config(server, signer), clock, accepted=(7, hashlib.sha256(body).hexdigest()))
    assert outcome.kind == "document"


def test_signature_is_checked_before_the_body_is_parsed(
    server: Server, signer: Signer, clock: Clock, monkeypatch: pytest.MonkeyPatch
):
    from vmprep.agent import document

    def boom(*_args: Any, **_kwargs: Any) -> None:
        raise AssertionError("parsed an unverified body")

    monkeypatch.setattr(document, "parse_strict", boom)
    body = b"{not json at all"
    server.route(PATH, Reply(200, body, headers=[("Vmprep-Signature", "keyid=x;sig=y")]))
    refused(fetch(config(server, signer), clock), "signature")


# -- 204, 304, 404, 401/403, others ------------------------------------------------------------
def test_204_is_nothing_configured(server: Server, signer: Signer, clock: Clock):
    server.route(PATH, Reply(204))
    assert fetch(config(server, signer), clock).kind == "none"


def test_304_with_last_serial_sent_is_not_modified(server: Server, signer: Signer, clock: Clock):
    server.route(PATH, Reply(304))
    assert fetch(config(server, signer), clock, last_completed_serial=7).kind == "not_modified"


def test_304_without_last_serial_sent_is_refused(server: Server, signer: Signer, clock: Clock):
    server.route(PATH, Reply(304))
    outcome = fetch(config(server, signer), clock)
    refused(outcome, "unreachable")
    assert "Vmprep-Last-Serial" in (outcome.message or "")


@pytest.mark.parametrize("status", [401, 403])
def test_401_403_no_retry_and_no_next_url(
    server: Server, signer: Signer, clock: Clock, status: int
):
    server.route(PATH, Reply(status))
    server.route(ROLE_PATH, signed(signer))
    cfg = config(server, signer, url=[server.url(PATH), server.url(ROLE_PATH)])
    refused(fetch(cfg, clock), "unauthorized")
    assert [r.path for r in server.requests] == [PATH]
    assert clock.sleeps == []


def test_url_list_404_falls_through_to_the_next(server: Server, signer: Signer, clock: Clock):
    server.route(ROLE_PATH, signed(signer, doc_bytes(target={"role": "web"})))
    cfg = config(server, signer, url=[server.url(PATH), server.url(ROLE_PATH)])
    outcome = fetch(cfg, clock)
    assert outcome.kind == "document"
    assert [r.path for r in server.requests] == [PATH, ROLE_PATH]


def test_url_list_all_404_is_nothing_configured(server: Server, signer: Signer, clock: Clock):
    other = "/v1/config/web/defaults"
    cfg = config(server, signer, url=[server.url(PATH), server.url(other)])
    assert fetch(cfg, clock).kind == "none"
    assert len(server.requests) == 2


UNKNOWN = Reply(404, b'{"error": "no such role"}', headers=[("Vmprep-Error", "unknown-role")])


@pytest.mark.parametrize(
    ("urls", "replies"),
    [
        ([PATH], {PATH: UNKNOWN}),  # vmprep serve says so
        ([PATH, ROLE_PATH], {PATH: UNKNOWN}),  # ... and the next URL is still asked
        ([PATH, ROLE_PATH], {}),  # a published tree: `_role` exists for every role it knows
    ],
)
def test_no_such_role_is_retried_until_the_budget_is_spent(
    server: Server, signer: Signer, clock: Clock, urls: list[str], replies: dict[str, Reply]
):
    for path, reply in replies.items():
        server.route(path, reply)
    cfg = config(server, signer, url=[server.url(u) for u in urls])
    outcome = fetch(cfg, clock)
    assert (outcome.kind, outcome.error_code) == ("unreachable", "unknown_role")
    assert "knows no role 'web'" in (outcome.message or "")
    assert [r.path for r in server.requests] == urls * 5  # retry.attempts passes over the list
    assert len(clock.sleeps) == 4


def test_a_role_that_comes_back_during_the_boot_is_applied(
    server: Server, signer: Signer, clock: Clock
):
    body = doc_bytes(target={"role": "web"})
    server.route(ROLE_PATH, UNKNOWN, UNKNOWN, signed(signer, body))
    cfg = config(server, signer, url=[server.url(PATH), server.url(ROLE_PATH)])
    outcome = fetch(cfg, clock)
    assert outcome.kind == "document"
    assert [r.path for r in server.requests] == [PATH, ROLE_PATH] * 3
    assert len(clock.sleeps) == 2


def test_no_such_role_counts_against_the_deadline(server: Server, signer: Signer, clock: Clock):
    server.route(PATH, UNKNOWN)
    retry = {"attempts": 1000, "initial": "1s", "max": "10s", "deadline": "60s"}
    outcome = fetch(config(server, signer, retry=retry), clock)
    assert outcome.error_code == "unknown_role"
    assert sum(clock.sleeps) <= 60
    assert len(server.requests) < 1000


@pytest.mark.parametrize(("status", "kind"), [(204, "none"), (304, "not_modified")])
def test_url_list_204_304_end_the_search(
    server: Server, signer: Signer, clock: Clock, status: int, kind: str
):
    server.route(PATH, Reply(status))
    cfg = config(server, signer, url=[server.url(PATH), server.url(ROLE_PATH)])
    assert fetch(cfg, clock, last_completed_serial=3).kind == kind
    assert [r.path for r in server.requests] == [PATH]


def test_url_list_transient_failure_retries_the_same_url(
    server: Server, signer: Signer, clock: Clock
):
    server.route(PATH, Reply(503), signed(signer))
    cfg = config(server, signer, url=[server.url(PATH), server.url(ROLE_PATH)])
    assert fetch(cfg, clock).kind == "document"
    assert [r.path for r in server.requests] == [PATH, PATH]


@pytest.mark.parametrize("status", [200 + 1, 202, 400, 405, 418, 451])
def test_any_other_status_is_refused_without_retry(
    server: Server, signer: Signer, clock: Clock, status: int
):
    server.route(PATH, Reply(status))
    outcome = fetch(config(server, signer), clock)
    refused(outcome, "unreachable")
    assert str(status) in (outcome.message or "")
    assert len(server.requests) == 1


# -- transient faults -----------------------------------------------------------------------------
def test_server_down_then_up(server: Server, signer: Signer, clock: Clock):
    port = free_port()
    holder: dict[str, Server] = {}

    def sleep(seconds: float) -> None:
        clock.sleep(seconds)
        if len(clock.sleeps) == 2:  # two refused connections, then the service comes up
            srv = Server(port=port)
            srv.route(PATH, signed(signer))
            holder["srv"] = srv

    cfg = config(server, signer, url=[f"http://127.0.0.1:{port}" + PATH])
    try:
        outcome = fetch_config(
            cfg,
            IDENTITY,
            role="web",
            token=None,
            last_completed_serial=None,
            accepted=None,
            agent_version="0.1.0",
            now=clock.now,
            sleep=sleep,
        )
    finally:
        if "srv" in holder:
            holder["srv"].close()
    assert outcome.kind == "document"
    assert len(clock.sleeps) == 2
    assert len(holder["srv"].requests) == 1


@pytest.mark.parametrize("status", [500, 502, 503, 504, 599, 408, 429])
def test_transient_statuses_then_success(server: Server, signer: Signer, clock: Clock, status: int):
    server.route(PATH, Reply(status), Reply(status), signed(signer))
    assert fetch(config(server, signer), clock).kind == "document"
    assert len(server.requests) == 3
    assert len(clock.sleeps) == 2
    assert all(0.1 <= s <= 10 for s in clock.sleeps)


def test_retry_after_seconds_and_date_are_honoured(server: Server, signer: Signer, clock: Clock):
    date = email.utils.formatdate(NOW + 42, usegmt=True)
    server.route(
        PATH,
        Reply(503, headers=[("Retry-After", "7")]),
        Reply(429, headers=[("Retry-After", date)]),
        Reply(503, headers=[("Retry-After", "86400")]),
        Reply(503, headers=[("Retry-After", "0")]),
        signed(signer),
    )
    retry = {"attempts": 5, "initial": "1s", "max": "60s"}
    assert fetch(config(server, signer, retry=retry), clock).kind == "document"
    # 7 s; the date 42 s ahead (less the 7 s already slept); clamped to max; the 100 ms floor.
    assert clock.sleeps == [7.0, pytest.approx(35.0), 60.0, 0.1]


def test_budget_spent_is_unreachable(server: Server, signer: Signer, clock: Clock):
    server.route(PATH, Reply(500))
    outcome = fetch(config(server, signer), clock)
    assert (outcome.kind, outcome.error_code) == ("unreachable", "unreachable")
    assert "5 attempt" in (outcome.message or "")
    assert len(server.requests) == 5


def test_deadline_budget(server: Server, signer: Signer, clock: Clock):
    server.route(PATH, Reply(503, headers=[("Retry-After", "10")]))
    retry = {"attempts": 1000, "initial": "1s", "max": "10s", "deadline": "25s"}
    outcome = fetch(config(server, signer, retry=retry), clock)
    assert outcome.kind == "unreachable"
    assert clock.sleeps == [10.0, 10.0]


def test_body_cut_off_midway_is_retried(server: Server, signer: Signer, clock: Clock):
    body = doc_bytes()
    server.route(PATH, signed(signer, body, cut_after=len(body) // 2), signed(signer, body))
    assert fetch(config(server, signer), clock).kind == "document"
    assert len(server.requests) == 2


def test_stalled_body_times_out_then_unreachable(server: Server, signer: Signer, clock: Clock):
    body = doc_bytes()
    server.route(PATH, signed(signer, body, cut_after=10, stall=10))
    cfg = config(server, signer, timeout="300ms", retry={"attempts": 2})
    outcome = fetch(cfg, clock)
    assert outcome.kind == "unreachable"
    assert "timed out" in (outcome.message or "")
    assert len(server.requests) == 2


# -- refusals -------------------------------------------------------------------------------------
def test_larger_than_the_cap_is_refused(server: Server, signer: Signer, clock: Clock):
    body = doc_bytes(variables={"pad": "x" * 5000})
    server.route(PATH, signed(signer, body))
    refused(fetch(config(server, signer, max_bytes=4096), clock), "too_large")
    assert len(server.requests) == 1


def test_gzip_is_refused(server: Server, signer: Signer, clock: Clock):
    body = doc_bytes()
    headers = [("Vmprep-Signature", signer.header(body)), ("Content-Encoding", "gzip")]
    server.route(PATH, Reply(200, body, headers=headers))
    refused(fetch(config(server, signer), clock), "encoding")


def test_bad_signature_is_refused(server: Server, signer: Signer, clock: Clock):
    body = doc_bytes()
    tampered = body.replace(b"echo hi", b"echo HI")
    server.route(PATH, Reply(200, tampered, headers=[("Vmprep-Signature", signer.header(body))]))
    refused(fetch(config(server, signer), clock), "signature")


def test_signature_by_an_unknown_key_is_refused(
    server: Server, signer: Signer, other_signer: Signer, clock: Clock
):
    server.route(PATH, signed(other_signer))
    refused(fetch(config(server, signer), clock), "signature")


def test_rotation_second_trusted_key(
    server: Server, signer: Signer, other_signer: Signer, clock: Clock
):
    server.route(PATH, signed(other_signer))
    cfg = config(server, signer, trusted_keys=[signer.public, other_signer.public])
    assert fetch(cfg, clock).kind == "document"


def test_expired_document_is_refused(server: Server, signer: Signer, clock: Clock):
    body = doc_bytes(issued_at="2026-01-01T00:00:00Z", expires_at="2026-01-01T01:00:00Z")
    server.route(PATH, signed(signer, body))
    refused(fetch(config(server, signer), clock), "expired")


def test_older_serial_is_a_replay(server: Server, signer: Signer, clock: Clock):
    server.route(PATH, signed(signer, doc_bytes(serial=7)))
    refused(fetch(config(server, signer), clock, accepted=(8, "0" * 64)), "replay")


def test_document_for_another_instance_is_refused(server: Server, signer: Signer, clock: Clock):
    body = doc_bytes(target={"role": "web", "instance_id": "i-0someoneelse"})
    server.route(PATH, signed(signer, body))
    refused(fetch(config(server, signer), clock), "wrong_target")


def test_invalid_document_is_refused(server: Server, signer: Signer, clock: Clock):
    body = doc_bytes(steps=[{"id": "ok", "cmd": "echo"}, {"id": "bad", "exec": "not argv"}])
    server.route(PATH, signed(signer, body))
    outcome = fetch(config(server, signer), clock)
    refused(outcome, "invalid_document")
    assert "steps[1]" in (outcome.message or "")


def test_malformed_trusted_key_is_refused(server: Server, signer: Signer, clock: Clock):
    server.route(PATH, signed(signer))
    outcome = fetch(config(server, signer, trusted_keys=["ed25519:nope"]), clock)
    refused(outcome, "unreachable")
    assert server.requests == []


# -- redirects ------------------------------------------------------------------------------------
def test_redirect_to_plain_http_is_refused(
    tls_server: Server, server: Server, signer: Signer, pki: Pki, clock: Clock
):
    tls_server.route(PATH, Reply(302, headers=[("Location", server.url(PATH))]))
    server.route(PATH, signed(signer))
    cfg = config(tls_server, signer, ca_bundle=str(pki.ca_file))
    refused(fetch(cfg, clock), "redirect")
    assert server.requests == []


def test_redirect_limit(server: Server, signer: Signer, clock: Clock):
    for i in range(4):
        server.route(f"/r{i}", Reply(301, headers=[("Location", f"/r{i + 1}")]))
    server.route("/r4", signed(signer))
    refused(fetch(config(server, signer, url=[server.url("/r0")]), clock), "redirect")


def test_authorization_dropped_on_origin_change_and_sidecar_follows_final_url(
    server: Server, server2: Server, signer: Signer, clock: Clock
):
    body = doc_bytes()
    server.route(PATH, Reply(307, headers=[("Location", server2.url("/static/doc?v=3"))]))
    server2.route("/static/doc?v=3", Reply(200, body))
    server2.route("/static/doc.sig?v=3", Reply(200, (signer.header(body) + "\n").encode()))
    outcome = fetch(config(server, signer), clock, token="fleet-token")
    assert outcome.kind == "document", outcome.message
    assert server.requests[0].headers["authorization"] == "Bearer fleet-token"
    assert [r.path for r in server2.requests] == ["/static/doc?v=3", "/static/doc.sig?v=3"]
    assert all("authorization" not in r.headers for r in server2.requests)
    assert server2.requests[1].headers["vmprep-instance-id"] == IDENTITY.instance_id


def test_tls_fetch_with_ca_bundle(tls_server: Server, signer: Signer, pki: Pki, clock: Clock):
    tls_server.route(PATH, signed(signer))
    cfg = config(tls_server, signer, ca_bundle=str(pki.ca_file), allow_insecure_http=False)
    assert fetch(cfg, clock).kind == "document"


def test_untrusted_tls_is_refused_at_once_without_retries(
    tls_server: Server, signer: Signer, clock: Clock
):
    """No ca_bundle: the test CA is unknown. Waiting cannot fix that, so no retry budget."""
    tls_server.route(PATH, signed(signer))
    cfg = config(tls_server, signer, allow_insecure_http=False)
    outcome = fetch(cfg, clock)
    assert outcome.kind == "refused"
    assert outcome.error_code == "unreachable"
    assert "not retried" in (outcome.message or "")
    assert clock.sleeps == []


def test_plain_http_needs_allow_insecure_http(server: Server, signer: Signer, clock: Clock):
    server.route(PATH, signed(signer))
    outcome = fetch(config(server, signer, allow_insecure_http=False), clock)
    assert outcome.kind == "refused"
    assert "allow_insecure_http" in (outcome.message or "")
    assert server.requests == []


# -- the sidecar ----------------------------------------------------------------------------------
def test_header_present_but_bad_is_refused_without_the_sidecar(
    server: Server, signer: Signer, clock: Clock
):
    body = doc_bytes()
    server.route(PATH, Reply(200, body, headers=[("Vmprep-Signature", "keyid=0;sig=AAAA")]))
    server.route(PATH + ".sig", Reply(200, signer.header(body).encode()))
    refused(fetch(config(server, signer), clock), "signature")
    assert [r.path for r in server.requests] == [PATH]


def test_no_header_then_the_sidecar_verifies(server: Server, signer: Signer, clock: Clock):
    body = doc_bytes()
    server.route(PATH, Reply(200, body))
    sidecar = f"keyid=0000;sig=AAAA\r\n\r\n{signer.header(body)}\r\n".encode()
    server.route(PATH + ".sig", Reply(200, sidecar))
    assert fetch(config(server, signer), clock).kind == "document"


def test_the_sidecar_is_requested_with_the_documents_headers(
    server: Server, signer: Signer, clock: Clock
):
    body = doc_bytes()
    server.route(PATH, Reply(200, body))
    server.route(PATH + ".sig", Reply(200, signer.header(body).encode()))
    outcome = fetch(
        config(server, signer), clock, token=Secret("t", "fleet-token"), last_completed_serial=3
    )
    assert outcome.kind == "document"
    document, sidecar = server.requests
    assert sidecar.path == PATH + ".sig"
    assert sidecar.headers == document.headers
    assert sidecar.headers["authorization"] == "Bearer fleet-token"
    assert sidecar.headers["vmprep-last-serial"] == "3"


@pytest.mark.parametrize("status", [404, 410])
def test_sidecar_missing_means_unsigned(server: Server, signer: Signer, clock: Clock, status: int):
    server.route(PATH, Reply(200, doc_bytes()))
    server.route(PATH + ".sig", Reply(status))
    outcome = fetch(config(server, signer), clock)
    refused(outcome, "signature")


def test_sidecar_transient_failure_is_retried(server: Server, signer: Signer, clock: Clock):
    body = doc_bytes()
    server.route(PATH, Reply(200, body))
    server.route(PATH + ".sig", Reply(502), Reply(200, signer.header(body).encode()))
    assert fetch(config(server, signer), clock).kind == "document"
    assert len(clock.sleeps) == 1


def test_sidecar_over_4_kib_is_refused(server: Server, signer: Signer, clock: Clock):
    body = doc_bytes()
    server.route(PATH, Reply(200, body))
    padding = b"\n" * 4096
    server.route(PATH + ".sig", Reply(200, padding + signer.header(body).encode()))
    refused(fetch(config(server, signer), clock), "too_large")


@pytest.mark.parametrize(("status", "code"), [(403, "unauthorized"), (204, "signature")])
def test_sidecar_other_statuses(
    server: Server, signer: Signer, clock: Clock, status: int, code: str
):
    server.route(PATH, Reply(200, doc_bytes()))
    server.route(PATH + ".sig", Reply(status))
    refused(fetch(config(server, signer), clock), code)


def test_sidecar_with_bom_is_refused(server: Server, signer: Signer, clock: Clock):
    body = doc_bytes()
    server.route(PATH, Reply(200, body))
    server.route(PATH + ".sig", Reply(200, b"\xef\xbb\xbf" + signer.header(body).encode()))
    refused(fetch(config(server, signer), clock), "signature")


# -- URLs -----------------------------------------------------------------------------------------
def test_fill_url_percent_encodes_each_value_as_a_path_segment():
    identity = Identity("i-0abc", "ec2-imds", "00-15-5d-01-02-03", "WEB/1 ü?#")
    url = fill_url("https://h/{role}/{instance_id}/{computer_name}/{mac}?x={role}", identity, "r")
    assert url == "https://h/r/i-0abc/WEB%2F1%20%C3%BC%3F%23/00-15-5d-01-02-03?x=r"


def test_url_needing_a_missing_mac_is_refused(server: Server, signer: Signer, clock: Clock):
    cfg = config(server, signer, url=server.url("/c/{mac}"))
    identity = Identity("i-1", "ec2-imds", None, "h")
    outcome = fetch_config(
        cfg,
        identity,
        role="web",
        token=None,
        last_completed_serial=None,
        accepted=None,
        agent_version="0",
        now=clock.now,
        sleep=clock.sleep,
    )
    assert outcome.kind == "refused"
    assert "{mac}" in (outcome.message or "")


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://h/v1/config/web/x", "https://h/v1/config/web/x.sig"),
        ("https://h/doc?v=1&b=2", "https://h/doc.sig?v=1&b=2"),
        ("https://h", "https://h/.sig"),
        ("https://h/a#frag", "https://h/a.sig"),
    ],
)
def test_sidecar_url(url: str, expected: str):
    assert sidecar_url(url) == expected


def test_messages_never_carry_the_token(server: Server, signer: Signer, clock: Clock):
    def echo(seen: Seen) -> Reply:
        return Reply(418, json.dumps(seen.headers).encode())

    server.route(PATH, echo)
    outcome = fetch(config(server, signer), clock, token=Secret("t", "very-secret-token"))
    assert "very-secret-token" not in repr(outcome)


# -- the outcome table as a model -------------------------------------------------------------------
@pytest.fixture(scope="module")
def shared_server() -> Iterator[Server]:
    srv = Server()
    yield srv
    srv.close()


TRANSIENT_STATUSES = (408, 429, 500, 503)
STATUSES = (200, 204, 304, 401, 403, 404, 410, 418, *TRANSIENT_STATUSES)
ATTEMPTS = 3


def model(plan: list[list[int]], last: int | None) -> tuple[str, str | None, int]:
    """(kind, error code, requests made) as the outcome table of docs/protocol.md says."""
    requests = 0
    for replies in plan:
        attempt = 0
        while True:
            status = replies[min(attempt, len(replies) - 1)]
            requests += 1
            if status in TRANSIENT_STATUSES:
                attempt += 1
                if attempt >= ATTEMPTS:
                    return "unreachable", "unreachable", requests
                continue
            break
        if status == 404:
            continue
        if status == 200:
            return "document", None, requests
        if status == 204:
            return "none", None, requests
        if status == 304:
            return (
                ("not_modified", None, requests) if last else ("refused", "unreachable", requests)
            )
        if status in (401, 403):
            return "refused", "unauthorized", requests
        return "refused", "unreachable", requests
    return "none", None, requests


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    plan=st.lists(
        st.lists(st.sampled_from(STATUSES), min_size=1, max_size=4), min_size=1, max_size=3
    ),
    last=st.one_of(st.none(), st.integers(1, 9)),
)
def test_outcome_table(shared_server: Server, signer: Signer, plan: list[list[int]], last):
    prefix = f"/{uuid.uuid4().hex}"
    urls = []
    for i, replies in enumerate(plan):
        path = f"{prefix}/{i}"
        shared_server.route(
            path, *[signed(signer) if status == 200 else Reply(status) for status in replies]
        )
        urls.append(shared_server.url(path))
    cfg = config(shared_server, signer, url=urls, retry={"attempts": ATTEMPTS})
    outcome = fetch(cfg, Clock(), last_completed_serial=last)
    made = [r for r in list(shared_server.requests) if r.path.startswith(prefix)]
    assert (outcome.kind, outcome.error_code, len(made)) == model(plan, last)
    assert (outcome.document is not None) == (outcome.kind == "document")


@pytest.mark.parametrize(
    "overrides", [{"timeout": "soon"}, {"retry": {"initial": "-1s"}}, {"max_bytes": "lots"}]
)
def test_bad_settings_are_refused_not_raised(
    server: Server, signer: Signer, clock: Clock, overrides: dict[str, Any]
):
    outcome = fetch(config(server, signer, **overrides), clock)
    refused(outcome, "unreachable")
    assert (outcome.message or "").startswith("phone_home:")
    assert server.requests == []


# -- secrets for baked steps (docs/protocol.md) -------------------------------------------------
def test_the_secrets_baked_steps_need_are_asked_for_and_must_come(
    server: Server, signer: Signer, clock: Clock
):
    body = doc_bytes(secrets={"join_user": "u", "join_password": "p"})
    server.route(PATH, signed(signer, body))
    outcome = fetch(config(server, signer), clock, secrets=["join_user", "join_password"])
    assert outcome.kind == "document"
    assert server.requests[0].headers["vmprep-secrets"] == "join_password, join_user"
    server.route(PATH, signed(signer, body))
    outcome = fetch(config(server, signer), clock, secrets=["join_user", "svc"])
    refused(outcome, "missing_secrets")
    assert "secret(s) 'svc'" in (outcome.message or "")


def test_no_secrets_wanted_sends_no_header(server: Server, signer: Signer, clock: Clock):
    server.route(PATH, signed(signer))
    assert fetch(config(server, signer), clock).kind == "document"
    assert "vmprep-secrets" not in server.requests[0].headers


def test_a_409_refusal_names_the_secrets_the_role_does_not_declare(
    server: Server, signer: Signer, clock: Clock
):
    error = {"error": "role 'web' does not declare secret(s) 'svc'"}
    server.route(PATH, Reply(409, json.dumps(error).encode()))
    outcome = fetch(config(server, signer), clock, secrets=["svc"])
    refused(outcome, "missing_secrets")
    assert "does not declare secret(s) 'svc'" in (outcome.message or "")
    assert clock.sleeps == []  # not retried
