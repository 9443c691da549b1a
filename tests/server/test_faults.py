"""Issue 22: reloads under read errors keep the last good repository; disconnecting clients
cost one rate-limited warning, not a traceback each."""

from __future__ import annotations

import asyncio
import logging
import os
import resource
from collections.abc import MutableMapping
from pathlib import Path
from typing import Any

import pytest

from tests.server.conftest import write_repo
from vmprep.errors import InputError
from vmprep.server.app import create_app
from vmprep.server.keys import generate
from vmprep.server.ratelog import RateLimitedWarning
from vmprep.server.service import Service
from vmprep.server.store import SqliteStore
from vmprep.spec.roles import yaml_files


@pytest.fixture
def service(tmp_path, monkeypatch):
    monkeypatch.setenv("TEST_JOIN_USER", "joiner")
    store = SqliteStore(tmp_path / "data")
    svc = Service(write_repo(tmp_path / "configs", sql=True), store, [generate()])
    yield svc
    store.close()


def _roles(service: Service) -> list[str]:
    return sorted(service.repo.roles)


def _open_until_emfile() -> list[int]:
    fds: list[int] = []
    try:
        while True:  # use up every descriptor left
            fds.append(os.open(os.devnull, os.O_RDONLY))
    except OSError:
        return fds


def test_a_reload_at_the_open_file_limit_keeps_every_role(service, caplog):
    before = _roles(service)
    assert before
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    held: list[int] = []
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (len(os.listdir("/proc/self/fd")) + 8, hard))
        held.extend(_open_until_emfile())
        with caplog.at_level(logging.INFO, logger="vmprep.server"):
            assert service.changed()  # unreadable: worth a reload, which says why
            assert service.reload() is False
    finally:
        for fd in held:
            os.close(fd)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    assert _roles(service) == before
    assert "reloaded: 0 role" not in caplog.text
    assert any(r.levelno == logging.ERROR for r in caplog.records)


def test_a_directory_that_vanishes_mid_walk_keeps_the_last_good_repository(service, monkeypatch):
    sub = service.configs / "roles"  # where write_repo puts web.yaml and sql.yaml
    assert sub.is_dir()
    before = _roles(service)
    real = os.scandir

    def scandir(path="."):
        if Path(path) == sub:  # listed by its parent, gone when the walk gets to it
            raise FileNotFoundError(2, "No such file or directory", str(path))
        return real(path)

    monkeypatch.setattr(os, "scandir", scandir)
    assert service.reload() is False
    assert _roles(service) == before


def test_an_unlistable_directory_is_an_error_not_an_empty_list(tmp_path, monkeypatch):
    (tmp_path / "sub").mkdir()

    def walk(top, onerror=None, **kwargs):
        assert onerror is not None, "os.walk without onerror skips what it cannot list"
        onerror(PermissionError(13, "Permission denied", str(top)))
        return iter(())

    monkeypatch.setattr(os, "walk", walk)
    with pytest.raises(InputError, match="cannot list the config repository"):
        yaml_files(tmp_path)


def test_a_reload_that_drops_a_role_says_which(service, caplog):
    sql = next(p for p in yaml_files(service.configs) if "sql" in p.name)
    sql.unlink()
    with caplog.at_level(logging.INFO, logger="vmprep.server"):
        assert service.reload() is True
    assert "roles no longer served: sql" in caplog.text


def test_disconnect_warnings_are_rate_limited(caplog):
    t = [100.0]
    warning = RateLimitedWarning("gone (from %s)", every=1.0, clock=lambda: t[0])
    with caplog.at_level(logging.WARNING, logger="vmprep.server"):
        written = [warning.warn("10.0.0.1") for _ in range(500)]
        t[0] += 1.0
        written.append(warning.warn("10.0.0.2"))
    assert written.count(True) == 2
    assert caplog.messages == [
        "gone (from 10.0.0.1)",
        "gone (from 10.0.0.2) (and 499 more since the last such line)",
    ]


def test_clients_that_disconnect_mid_report_cost_one_warning_and_no_traceback(service, caplog):
    from vmprep.server import app as app_module

    monkey_clock = [0.0]
    app_module.disconnects.clock = lambda: monkey_clock[0]
    app_module.disconnects._next = 0.0
    app = create_app(service)

    async def one() -> list[MutableMapping[str, Any]]:
        sent: list[MutableMapping[str, Any]] = []
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "POST",
            "scheme": "http",
            "path": "/v1/report/i-1",
            "raw_path": b"/v1/report/i-1",
            "query_string": b"",
            "root_path": "",
            "headers": [(b"content-type", b"application/json"), (b"content-length", b"500")],
            "client": ("127.0.0.1", 5000),
            "server": ("127.0.0.1", 8080),
        }
        messages = [{"type": "http.request", "body": b"{", "more_body": True}]

        async def receive() -> dict[str, Any]:
            return messages.pop(0) if messages else {"type": "http.disconnect"}

        async def send(message: MutableMapping[str, Any]) -> None:
            sent.append(message)

        await app(scope, receive, send)
        return sent

    async def many() -> None:
        for _ in range(200):
            await one()

    with caplog.at_level(logging.DEBUG):
        asyncio.run(many())
    assert [r.levelname for r in caplog.records if "disconnect" in r.getMessage()] == ["WARNING"]
    assert not [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR]
