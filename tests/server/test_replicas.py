"""Several `vmprep serve` replicas on one PostgreSQL give the same answers as one (issue 17):
two real replicas on loopback, hammered from many threads at once."""

from __future__ import annotations

import threading
import time
import uuid
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import psycopg
import pytest

from tests.server.conftest import write_repo
from vmprep.server.keys import write_keypair
from vmprep.server.service import hash_token

pytestmark = pytest.mark.slow
ADMIN = {"Authorization": "Bearer admin"}


def _report(instance_id: str, report_id: str, state: str = "done", sent: int = 0) -> dict[str, Any]:
    return {
        "apiVersion": "vmprep/v1",
        "kind": "StatusReport",
        "report_id": report_id,
        "instance_id": instance_id,
        "role": "web",
        "agent_version": "0.1.0",
        "state": state,
        "sent_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(1_800_000_000 + sent)),
        "steps": [{"id": "a", "status": "done"}],
    }


@pytest.fixture
def replicas(tmp_path, pg_url, serve_process):
    configs = write_repo(tmp_path / "configs")
    write_keypair(tmp_path / "k")
    common = ["--configs", str(configs), "--key", str(tmp_path / "k.pem"), "--store", pg_url]
    tokens = tmp_path / "tokens"
    tokens.write_text(f"admin {hash_token('admin')}\n")
    common += ["--poll", "0.2", "--tokens", str(tokens)]
    procs = [
        serve_process([*common, "--data-dir", str(tmp_path / f"d{n}")]).start() for n in (0, 1)
    ]
    return configs, procs, pg_url


def test_two_replicas_agree_under_load(replicas):
    configs, procs, url = replicas
    urls = [p.url for p in procs]
    clients = [httpx.Client(base_url=u, timeout=30) for u in urls]
    try:
        # 1. Concurrent first fetches of one instance (its own document: an override) on both
        #    replicas: one issue, one serial, the same bytes.
        def first(n: int) -> tuple[int, bytes]:
            r = clients[n % 2].get("/v1/config/web/canary-1")
            assert r.status_code == 200, r.text
            return r.json()["serial"], r.content

        with ThreadPoolExecutor(16) as pool:
            got = list(pool.map(first, range(32)))
        assert len(set(got)) == 1

        # 2. Reports: each report_id sent 4 times (twice to each replica), all at once.
        ids = [(f"i-{n % 40:03d}", str(uuid.uuid4()), n) for n in range(200)]

        def send(job: tuple[int, tuple[str, str, int]]) -> tuple[str, bool]:
            n, (iid, rid, sent) = job
            r = clients[n % 2].post(f"/v1/report/{iid}", json=_report(iid, rid, sent=sent))
            assert r.status_code == 202, r.text
            return rid, r.json()["stored"]

        jobs = list(enumerate([j for j in ids for _ in range(4)]))
        with ThreadPoolExecutor(24) as pool:
            answers = list(pool.map(send, jobs))
        stored: dict[str, int] = defaultdict(int)
        for rid, was_stored in answers:
            stored[rid] += was_stored
        assert set(stored) == {rid for _, rid, _ in ids}
        assert all(n == 1 for n in stored.values())  # no duplicate, none lost
        with psycopg.connect(url) as conn:
            row = conn.execute("SELECT count(*) FROM reports").fetchone()
        assert row is not None
        (count,) = row
        assert count == 200
        for c in clients:  # both replicas read the same state
            listed = c.get("/v1/instances", headers=ADMIN).json()["instances"]
            assert len(listed) == 40
            latest = {i["instance_id"]: i["report_id"] for i in listed}
            for iid, rid, sent in ids:
                if sent >= 160:  # the newest report of each instance is its summary
                    assert latest[iid] == rid

        # 3. A config reload while both serve: agents fetching from either replica in turn
        #    never see a serial go back, and a serial always names the same bytes.
        stop = threading.Event()
        seen: dict[int, bytes] = {}
        problems: list[str] = []
        lock = threading.Lock()

        def agent(n: int) -> None:
            last = 0
            turn = n
            while not stop.is_set():
                turn += 1
                headers = {"Vmprep-Last-Serial": str(last)} if last else {}
                r = clients[turn % 2].get(f"/v1/config/web/i-{n}", headers=headers)
                if r.status_code == 304:
                    continue
                if r.status_code != 200:
                    problems.append(f"HTTP {r.status_code}: {r.text}")
                    return
                serial = r.json()["serial"]
                with lock:
                    if seen.setdefault(serial, r.content) != r.content:
                        problems.append(f"serial {serial} names two documents")
                if serial < last:
                    problems.append(f"agent {n}: serial {serial} after {last}")
                last = serial

        threads = [threading.Thread(target=agent, args=(n,)) for n in range(6)]
        for t in threads:
            t.start()
        role = configs / "roles" / "web.yaml"
        previous = "contoso"
        for site in ("edit-1", "edit-2", "edit-3"):
            time.sleep(0.6)
            role.write_text(role.read_text().replace(f"site: {previous}", f"site: {site}"))
            previous = site
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:  # both replicas converge on the last edit
            bodies = [c.get("/v1/config/web/i-0").json()["variables"]["site"] for c in clients]
            if bodies == ["edit-3", "edit-3"]:
                break
            time.sleep(0.1)
        else:
            raise AssertionError(f"the replicas did not converge: {bodies}")
        time.sleep(0.5)
        stop.set()
        for t in threads:
            t.join()
        assert not problems, problems[:5]
        assert len(seen) >= 4  # the first document and three edits, at least
    finally:
        for c in clients:
            c.close()
