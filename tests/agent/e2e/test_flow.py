"""`python -I agent.pyz run` as a real process against a signing config service on loopback."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from tests.agent.e2e.conftest import UUID, appender

SECRET = "s3cr3t-J0in-Passw0rd"


def lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


def test_baked_then_remote_steps_with_reports(machine, service, tmp_path: Path) -> None:
    out = tmp_path / "out"
    service.publish(
        [
            appender("remote-1", out),
            {
                "id": "uses-secret",
                "exec": {
                    "argv": ["/bin/sh", "-c", 'echo "pw=$PW"'],
                    "env": {"PW": {"secret": "join_password"}},
                },
            },
            {"id": "note", "file": {"path": str(tmp_path / "site.txt"), "content": "contoso"}},
        ],
        serial=5,
        secrets={"join_password": SECRET},
        variables={"site": "contoso"},
    )
    m = machine([appender("baked-1", out)], phone_home=service.phone_home())
    result = m.run()
    assert result.returncode == 0, result.stderr
    assert lines(out) == ["baked-1", "remote-1"]
    assert (tmp_path / "site.txt").read_text() == "contoso"
    state = m.state()
    assert (state["state"], state["completed_serial"], state["accepted"]["serial"]) == (
        "done",
        5,
        5,
    )
    # request headers and the reports the service received
    fetch = service.fetches[0]
    assert fetch["path"] == f"/v1/config/web/{UUID}"
    assert (fetch["Vmprep-Instance-Id"], fetch["Vmprep-Role"]) == (UUID, "web")
    assert fetch["User-Agent"] == "vmprep-agent/0.1.0"
    first, last = service.reports[0], service.reports[-1]
    assert (first["state"], last["state"], last["config_serial"]) == ("running", "done", 5)
    assert [(s["id"], s["source"], s["status"]) for s in last["steps"]] == [
        ("baked-1", "baked", "done"),
        ("remote-1", "remote", "done"),
        ("uses-secret", "remote", "done"),
        ("note", "remote", "done"),
    ]
    assert all(r["instance_id"] == UUID and r["kind"] == "StatusReport" for r in service.reports)
    assert len({r["report_id"] for r in service.reports}) == len(service.reports)
    # the secret was used, and is nowhere: not in state, logs, spool or reports
    assert last["steps"][2]["output_tail"] == "pw=***\n"
    assert SECRET not in m.all_files_text()
    assert SECRET not in str(service.reports) + result.stderr
    code, status = m.status()
    assert (code, status["state"]) == (0, "done")
    # run again: same serial, same bytes: nothing new runs
    assert m.run().returncode == 0
    assert lines(out) == ["baked-1", "remote-1"]
    assert service.fetches[-1]["Vmprep-Last-Serial"] == "5"


def test_reboot_in_remote_steps_refetches_and_resumes(machine, service, tmp_path: Path) -> None:
    out = tmp_path / "out"
    service.publish(
        [appender("r1", out), {"id": "rb", "reboot": {"reason": "join"}}, appender("r2", out)],
        secrets={"join_password": SECRET},
    )
    m = machine([appender("b1", out)], phone_home=service.phone_home())
    assert m.run().returncode == 2
    assert (lines(out), m.reboots()) == (["b1", "r1"], 1)
    code, status = m.status()
    assert (code, status["state"]) == (2, "running")
    m.reboot()
    assert m.run().returncode == 0
    assert lines(out) == ["b1", "r1", "r2"]
    assert len(service.fetches) == 2  # a document with secrets is fetched again, not cached
    assert m.state()["boot"] == 2
    assert SECRET not in m.all_files_text()


def test_newer_document_replaces_an_unfinished_one(machine, service, tmp_path: Path) -> None:
    out = tmp_path / "out"
    service.publish(
        [appender("same", out), {"id": "rb", "reboot": {}}, appender("old-only", out)], serial=1
    )
    m = machine([], phone_home=service.phone_home())
    assert m.run().returncode == 2
    service.publish([appender("same", out), appender("new-only", out)], serial=2)
    m.reboot()
    assert m.run().returncode == 0
    # "same" is identical content: done once, not run again under serial 2
    assert lines(out) == ["same", "new-only"]
    assert m.state()["completed_serial"] == 2


def test_bad_signature_applies_nothing(machine, service, tmp_path: Path) -> None:
    out = tmp_path / "out"
    service.publish([appender("remote", out)])
    service.signer = Ed25519PrivateKey.generate()
    m = machine([appender("baked", out)], phone_home=service.phone_home())
    assert m.run().returncode == 0  # on_unreachable: continue -> the baked steps decide
    assert lines(out) == ["baked"]
    state = m.state()
    assert (state["state"], state["error"]["code"], state["accepted"]) == (
        "done",
        "signature",
        None,
    )
    assert service.reports[-1]["error"]["code"] == "signature"


def test_refusal_with_halt(machine, service, tmp_path: Path) -> None:
    out = tmp_path / "out"
    service.publish([appender("remote", out)], target={"role": "db"})
    m = machine([appender("baked", out)], phone_home=service.phone_home(on_unreachable="halt"))
    assert m.run().returncode == 1
    assert lines(out) == ["baked"]
    code, status = m.status()
    assert (code, status["state"], status["error"]["code"]) == (1, "halted", "wrong_target")


def test_a_document_with_one_bad_step_runs_none(machine, service, tmp_path: Path) -> None:
    out = tmp_path / "out"
    service.publish([appender("first", out), {"id": "win", "powershell": "Write-Host x"}])
    m = machine([], phone_home=service.phone_home())
    assert m.run().returncode == 0
    assert lines(out) == []
    error = m.state()["error"]
    assert error["code"] == "invalid_document"
    assert "not supported on this platform" in error["message"]
    service.publish([appender("first", out), {"id": "bad", "exec": {}}], serial=2)
    assert m.run().returncode == 0
    assert lines(out) == []
    assert m.state()["error"]["code"] == "invalid_document"
    service.publish([appender("first", out), {"id": "again", "phone_home": {}}], serial=3)
    assert m.run().returncode == 0
    assert lines(out) == []
    assert "cannot phone home again" in m.state()["error"]["message"]


def test_unreachable_service_carries_on_with_baked_steps(machine, service, tmp_path: Path) -> None:
    out = tmp_path / "out"
    ph = service.phone_home(
        url=["http://127.0.0.1:9/v1/config/{role}/{instance_id}"], report_url=None
    )
    ph = {k: v for k, v in ph.items() if v is not None}
    m = machine([appender("baked", out)], phone_home=ph)
    result = m.run()
    assert result.returncode == 0, result.stderr
    assert lines(out) == ["baked"]
    assert m.state()["error"]["code"] == "unreachable"


def _recording_startup_task(m: Any, tmp_path: Path) -> Path:
    """POSIX start-at-boot commands that note 'install' and 'remove' in a file."""
    record = tmp_path / "task"
    options = m.config["platform_options"]
    options["startup_install_command"] = ["/bin/sh", "-c", f'echo install >> "{record}"', "-"]
    options["startup_remove_command"] = ["/bin/sh", "-c", f'echo remove >> "{record}"']
    return record


def test_the_last_report_is_delivered_before_exit_when_the_service_comes_back(
    machine, service, tmp_path: Path
) -> None:
    """The report service fails the first report's attempts (down for a moment); the agent
    then spools the rest during its cool-down, and delivers them all before it exits."""
    out = tmp_path / "out"
    service.publish([appender("r1", out)])
    m = machine([appender("b1", out)], phone_home=service.phone_home())
    task = _recording_startup_task(m, tmp_path)
    service.failing_posts = 3  # the first report's whole small budget
    result = m.run()
    assert result.returncode == 0, result.stderr
    assert service.reports, "no report reached the service"
    assert service.reports[-1]["state"] == "done"
    assert [r["state"] for r in service.reports].count("done") == 1
    assert list((m.state_dir / "spool").glob("*.json")) == []
    assert "flush_pending" not in m.state()
    assert lines(task) == ["install", "remove"]


def test_a_done_run_with_unsent_reports_keeps_its_task_and_sends_them_next_start(
    machine, service, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    m = machine([appender("baked", out)], phone_home=service.phone_home())
    task = _recording_startup_task(m, tmp_path)
    service.failing_posts = 10**6  # the report service is down for the whole first run
    result = m.run()
    assert result.returncode == 0, result.stderr
    spooled = [json.loads(p.read_text())["report_id"] for p in sorted(m.state_dir.glob("spool/*"))]
    assert spooled
    assert service.reports == []
    state = m.state()
    assert (state["state"], state["flush_pending"], state["startup_task"]) == ("done", True, True)
    assert lines(task) == ["install"]  # not removed: it is what sends the reports later
    log = (m.state_dir / "logs" / "agent.log").read_text()
    assert "stays registered" in log
    fetches = len(service.fetches)

    service.failing_posts = 0
    m.reboot()
    result = m.run()
    assert result.returncode == 0, result.stderr
    assert [r["report_id"] for r in service.reports] == spooled
    assert service.reports[-1]["state"] == "done"
    assert lines(out) == ["baked"]  # flush only: no step ran again
    assert len(service.fetches) == fetches  # and nothing was fetched
    assert lines(task) == ["install", "remove"]
    assert "flush_pending" not in m.state()
    assert list((m.state_dir / "spool").glob("*.json")) == []


def test_the_log_says_why_a_run_failed(machine, service, tmp_path: Path) -> None:
    failing = {"id": "bad", "exec": {"argv": ["/bin/sh", "-c", "echo no disk; exit 3"]}}
    m = machine([failing], phone_home=None)
    assert m.run().returncode == 1
    log = (m.state_dir / "logs" / "agent.log").read_text()
    (line,) = [x for x in log.splitlines() if "run ended" in x]
    assert "ERROR" in line
    assert "run ended: failed (step_failed): step bad:" in line


def test_reports_reach_the_service_before_the_reboot(machine, service, tmp_path: Path) -> None:
    out = tmp_path / "out"
    service.publish([appender("r1", out), {"id": "rb", "reboot": {}}, appender("r2", out)])
    m = machine([], phone_home=service.phone_home())
    m.config["platform_options"]["reboot_command"] = service.reboot_command()
    assert m.run().returncode == 2
    (seen,) = service.reports_at_reboot
    last = seen[-1]
    assert last["state"] == "running"
    assert {s["id"]: s["status"] for s in last["steps"]} == {
        "r1": "done",
        "rb": "done",
        "r2": "pending",
    }


def test_unfinished_document_and_service_down_stays_running(
    machine, service, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    service.publish([appender("r1", out), {"id": "rb", "reboot": {}}, appender("r2", out)])
    m = machine([appender("b1", out)], phone_home=service.phone_home())
    assert m.run().returncode == 2
    service.down = True
    m.reboot()
    result = m.run()
    assert result.returncode == 2, result.stderr  # not "done": the document is half applied
    state = m.state()
    assert (state["state"], state["error"]["code"]) == ("running", "unreachable")
    service.down = False
    m.reboot()
    assert m.run().returncode == 0
    assert lines(out) == ["b1", "r1", "r2"]
    assert m.state()["error"] is None


def test_withdrawn_document_leaves_no_remote_steps(machine, service, tmp_path: Path) -> None:
    out = tmp_path / "out"
    service.publish([appender("r1", out)])
    m = machine([], phone_home=service.phone_home())
    assert m.run().returncode == 0
    service.documents.clear()
    assert m.run().returncode == 0
    code, status = m.status()
    assert (code, status["config_serial"], status["steps"]) == (0, None, [])
