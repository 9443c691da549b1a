"""Status reports: the body, the POST, retries, the 1 MiB cap, the spool."""

from __future__ import annotations

import json
import re
import uuid
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.agent.net.conftest import IDENTITY, Clock, Reply, Server, free_port
from vmprep.agent.reportsender import FINAL_DEADLINE, MAX_BODY, Reporter, encode, last_bytes
from vmprep.agent.secrets import Redactor, Secret

REPORT_PATH = f"/v1/report/{IDENTITY.instance_id}"


def reporter(
    url: str | None, tmp_path: Path, clock: Clock, *, token: Any = None, **cfg: Any
) -> Reporter:
    phone_home = {
        "url": ["http://127.0.0.1:1/unused"],
        "role": "web",
        "trusted_keys": [],
        "timeout": "5s",
        "retry": {"attempts": 30, "initial": "2s", "max": "5m"},
        "allow_insecure_http": True,
        **cfg,
    }
    if url is not None:
        phone_home["report_url"] = url
    return Reporter(
        phone_home,
        IDENTITY,
        role="web",
        token=token,
        spool_dir=tmp_path / "spool",
        agent_version="0.1.0",
        redact=Redactor(["hunter2"]),
        now=clock.now,
        sleep=clock.sleep,
    )


def step(output: str = "ok") -> dict[str, Any]:
    return {"id": "iis", "source": "remote", "status": "done", "attempts": 1, "output_tail": output}


def body_of(server: Server, index: int = 0) -> dict[str, Any]:
    return dict(json.loads(server.requests[index].body))


def spooled(tmp_path: Path) -> list[Path]:
    return sorted((tmp_path / "spool").glob("*.json"))


def test_report_is_complete_and_posted(server: Server, tmp_path: Path, clock: Clock):
    server.route(REPORT_PATH, Reply(202, b'{"stored": true}'))
    rep = reporter(
        server.url("/v1/report/{instance_id}"), tmp_path, clock, token=Secret("t", "tok")
    )
    assert rep.send({"state": "running", "boot": 1, "config_serial": 42, "steps": [step()]})
    seen = server.requests[0]
    assert seen.method == "POST"
    assert seen.headers["content-type"] == "application/json"
    assert seen.headers["authorization"] == "Bearer tok"
    assert int(seen.headers["content-length"]) == len(seen.body)
    body = body_of(server)
    assert body["apiVersion"] == "vmprep/v1"
    assert body["kind"] == "StatusReport"
    assert uuid.UUID(body["report_id"]).version == 4
    assert body["instance_id"] == IDENTITY.instance_id
    assert (body["role"], body["computer_name"], body["agent_version"]) == ("web", "WEB 1", "0.1.0")
    assert (body["state"], body["boot"], body["config_serial"]) == ("running", 1, 42)
    assert body["sent_at"] == "2027-01-15T08:00:00Z"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", body["sent_at"])
    assert body["error"] is None
    assert body["steps"] == [step()]


def test_every_report_gets_a_fresh_id(server: Server, tmp_path: Path, clock: Clock):
    server.route(REPORT_PATH, Reply(202))
    rep = reporter(server.url(REPORT_PATH), tmp_path, clock)
    rep.send({"state": "running", "steps": []})
    rep.send({"state": "done", "steps": []})
    assert body_of(server, 0)["report_id"] != body_of(server, 1)["report_id"]


def test_secrets_are_redacted_everywhere(server: Server, tmp_path: Path, clock: Clock):
    server.route(REPORT_PATH, Reply(202))
    rep = reporter(server.url(REPORT_PATH), tmp_path, clock)
    error = {"code": "step_failed", "message": "password hunter2 rejected"}
    rep.send({"state": "failed", "steps": [step("echo hunter2")], "error": error})
    assert b"hunter2" not in server.requests[0].body
    assert body_of(server)["error"]["message"] == "password *** rejected"


def test_transient_failures_are_retried_with_a_small_budget(
    server: Server, tmp_path: Path, clock: Clock
):
    server.route(REPORT_PATH, Reply(503), Reply(429, headers=[("Retry-After", "120")]), Reply(202))
    rep = reporter(server.url(REPORT_PATH), tmp_path, clock)
    assert rep.send({"state": "done", "steps": []})
    assert len(server.requests) == 3
    assert clock.sleeps[1] == 5.0  # Retry-After clamped to the report's 5 s ceiling
    assert spooled(tmp_path) == []


def test_unreachable_reports_are_spooled_then_flushed_oldest_first(
    server: Server, tmp_path: Path, clock: Clock
):
    port = free_port()
    down = reporter(f"http://127.0.0.1:{port}{REPORT_PATH}", tmp_path, clock)
    assert not down.send({"state": "running", "boot": 1, "steps": []})
    assert len(clock.sleeps) == 2  # three attempts in all
    assert not down.send({"state": "running", "boot": 2, "steps": []})
    assert len(clock.sleeps) == 2  # the service is known down: one attempt, no waiting
    files = spooled(tmp_path)
    assert len(files) == 2
    assert not list((tmp_path / "spool").glob(".*"))  # no temp files left
    first_id = json.loads(files[0].read_bytes())["report_id"]

    up = Server(port=port)
    try:
        up.route(REPORT_PATH, Reply(202))
        again = reporter(f"http://127.0.0.1:{port}{REPORT_PATH}", tmp_path, clock)
        assert again.flush_spool() == 2
        assert [json.loads(r.body)["boot"] for r in up.requests] == [1, 2]
        assert json.loads(up.requests[0].body)["report_id"] == first_id  # kept for dedup
        assert spooled(tmp_path) == []
    finally:
        up.close()


def test_send_flushes_older_reports_first(server: Server, tmp_path: Path, clock: Clock):
    server.route(REPORT_PATH, Reply(500), Reply(500), Reply(500), Reply(202))
    rep = reporter(server.url(REPORT_PATH), tmp_path, clock)
    assert not rep.send({"state": "running", "boot": 1, "steps": []})
    clock.sleep(61)  # past the cool-off
    assert rep.send({"state": "done", "boot": 1, "steps": []})
    states = [json.loads(r.body)["state"] for r in server.requests[3:]]
    assert states == ["running", "done"]
    assert spooled(tmp_path) == []


def test_flush_stops_at_the_first_failure(server: Server, tmp_path: Path, clock: Clock):
    server.route(REPORT_PATH, Reply(500))
    rep = reporter(server.url(REPORT_PATH), tmp_path, clock)
    for boot in range(3):
        rep.send({"state": "running", "boot": boot, "steps": []})
    before = len(server.requests)
    assert rep.flush_spool() == 0
    assert len(server.requests) == before + 1
    assert len(spooled(tmp_path)) == 3


@pytest.mark.parametrize("status", [400, 413])
def test_rejected_bodies_are_dropped_not_spooled(
    server: Server, tmp_path: Path, clock: Clock, status: int
):
    server.route(REPORT_PATH, Reply(status, b'{"error": "bad"}'))
    rep = reporter(server.url(REPORT_PATH), tmp_path, clock)
    assert rep.send({"state": "done", "steps": []})
    assert len(server.requests) == 1
    assert spooled(tmp_path) == []


@pytest.mark.parametrize("status", [401, 403, 404])
def test_other_failures_are_spooled_without_retry(
    server: Server, tmp_path: Path, clock: Clock, status: int
):
    server.route(REPORT_PATH, Reply(status))
    rep = reporter(server.url(REPORT_PATH), tmp_path, clock)
    assert not rep.send({"state": "done", "steps": []})
    assert len(server.requests) == 1
    assert len(spooled(tmp_path)) == 1


def test_no_report_url_is_a_quiet_no_op(tmp_path: Path, clock: Clock):
    rep = reporter(None, tmp_path, clock)
    assert not rep.send({"state": "done", "steps": []})
    assert rep.flush_spool() == 0
    assert not (tmp_path / "spool").exists()


def test_send_never_raises(tmp_path: Path, clock: Clock):
    blocker = tmp_path / "spool"
    blocker.write_text("a file where the spool directory should be")
    rep = reporter(f"http://127.0.0.1:{free_port()}/r", tmp_path, clock)
    assert rep.send({"state": "done", "steps": []}) is False


def test_the_1_mib_cap_cuts_output_tails_first():
    steps = [step("x" * 4096) for _ in range(400)]  # ~1.6 MiB of tails
    report = {"apiVersion": "vmprep/v1", "state": "done", "steps": steps}
    body = encode(report)
    assert body is not None
    assert len(body) <= MAX_BODY
    tails = {len(s["output_tail"]) for s in json.loads(body)["steps"]}
    assert tails == {256}
    small = encode({"steps": [step("y" * 10_000)]})
    assert small is not None
    assert json.loads(small)["steps"][0]["output_tail"] == "y" * 4096


def test_a_report_too_large_even_without_tails_is_dropped(
    server: Server, tmp_path: Path, clock: Clock
):
    server.route(REPORT_PATH, Reply(202))
    rep = reporter(server.url(REPORT_PATH), tmp_path, clock)
    huge = {"state": "failed", "steps": [], "error": {"code": "x", "message": "m" * MAX_BODY}}
    assert not rep.send(huge)
    assert server.requests == []
    assert spooled(tmp_path) == []


def test_spool_keeps_at_most_100(tmp_path: Path, clock: Clock):
    rep = reporter(f"http://127.0.0.1:{free_port()}/r", tmp_path, clock)
    for i in range(103):
        rep._spool(json.dumps({"n": i}).encode())
    files = spooled(tmp_path)
    assert len(files) == 100
    assert json.loads(files[0].read_bytes()) == {"n": 3}


def test_a_down_service_is_left_alone_for_a_minute(server: Server, tmp_path: Path, clock: Clock):
    server.route(REPORT_PATH, Reply(503), Reply(503), Reply(503), Reply(503), Reply(202))
    rep = reporter(server.url(REPORT_PATH), tmp_path, clock)
    assert not rep.send({"state": "running", "boot": 1, "steps": []})
    assert len(server.requests) == 3
    clock.sleep(30)
    assert not rep.send({"state": "running", "boot": 2, "steps": []})
    assert len(server.requests) == 3  # straight to the spool
    clock.sleep(31)
    assert not rep.send({"state": "running", "boot": 3, "steps": []})
    assert len(server.requests) == 4  # one attempt, no retries: 503 again
    clock.sleep(61)
    assert rep.send({"state": "done", "boot": 4, "steps": []})
    assert [json.loads(r.body)["boot"] for r in server.requests[4:]] == [1, 2, 3, 4]
    assert spooled(tmp_path) == []


def test_a_report_in_flight_when_the_process_dies_is_not_lost(
    server: Server, tmp_path: Path, clock: Clock, monkeypatch: pytest.MonkeyPatch
):
    server.route(REPORT_PATH, Reply(202))
    rep = reporter(server.url(REPORT_PATH), tmp_path, clock)

    def killed(*_args: Any, **_kwargs: Any) -> None:
        raise SystemExit("killed mid-send")

    monkeypatch.setattr(rep.session, "request", killed)
    with pytest.raises(SystemExit):
        rep.send({"state": "done", "boot": 9, "steps": []})
    [left] = spooled(tmp_path)
    report_id = json.loads(left.read_bytes())["report_id"]

    next_run = reporter(server.url(REPORT_PATH), tmp_path, clock)
    assert next_run.flush_spool() == 1
    assert body_of(server)["report_id"] == report_id
    assert spooled(tmp_path) == []


def test_bad_settings_disable_reports_instead_of_raising(tmp_path: Path, clock: Clock):
    rep = reporter("http://127.0.0.1:1/r", tmp_path, clock, timeout="soon")
    assert rep.url is None
    assert rep.send({"state": "done", "steps": []}) is False


@given(st.text(max_size=3000), st.integers(0, 5000))
def test_tails_are_cut_in_utf8_bytes_at_a_character_boundary(text: str, limit: int):
    tail = last_bytes(text, limit)
    assert len(tail.encode("utf-8", "surrogatepass")) <= limit
    assert text.endswith(tail)
    if len(text.encode("utf-8", "surrogatepass")) <= limit:
        assert tail == text


def test_a_4_kib_tail_of_wide_characters():
    body = encode({"steps": [step("€" * 4096)]})  # 3 bytes each
    assert body is not None
    tail = json.loads(body)["steps"][0]["output_tail"]
    assert tail == "€" * (4096 // 3)


def test_lone_surrogates_in_output_still_make_valid_utf8(
    server: Server, tmp_path: Path, clock: Clock
):
    server.route(REPORT_PATH, Reply(202))
    rep = reporter(server.url(REPORT_PATH), tmp_path, clock)
    assert rep.send({"state": "done", "steps": [step("bad \udcff byte")]})
    assert body_of(server)["steps"][0]["output_tail"] == "bad ? byte"


def test_delivery_before_exit_ignores_the_cool_down_and_retries_like_a_fetch(
    server: Server, tmp_path: Path, clock: Clock
):
    server.route(
        REPORT_PATH,
        *[Reply(503)] * 3,  # the first report's small budget: the service counts as down
        Reply(503, headers=[("Retry-After", "40")]),
        Reply(503),
        Reply(202),
    )
    rep = reporter(server.url(REPORT_PATH), tmp_path, clock)
    assert not rep.send({"state": "running", "boot": 1, "steps": []})
    assert not rep.send({"state": "done", "boot": 1, "steps": []})  # cool-down: spooled only
    assert len(server.requests) == 3
    before = len(clock.sleeps)
    assert rep.deliver() == 0
    waits = clock.sleeps[before:]
    assert waits[0] == 40.0  # Retry-After honoured up to retry.max (5 min), not the 5 s cap
    assert 0.1 <= waits[1] <= 4.0  # full jitter on the fetch's initial (2 s) x 2^1
    assert [json.loads(r.body)["state"] for r in server.requests[-2:]] == ["running", "done"]
    assert spooled(tmp_path) == []


def test_delivery_before_exit_is_bounded(tmp_path: Path, clock: Clock):
    rep = reporter(
        f"http://127.0.0.1:{free_port()}{REPORT_PATH}",
        tmp_path,
        clock,
        retry={"attempts": 1000, "initial": "2s", "max": "30s"},
    )
    assert not rep.send({"state": "done", "boot": 1, "steps": []})
    before = len(clock.sleeps)
    assert rep.deliver() == 1  # still unsent: kept for the next start
    assert sum(clock.sleeps[before:]) <= FINAL_DEADLINE
    assert len(spooled(tmp_path)) == 1
