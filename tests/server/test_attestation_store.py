"""The Store's attestation state (issue #15): single-use nonces bound to an instance, and the
record of which attestation admitted each instance. PostgreSQL implements the same Protocol."""

from __future__ import annotations

import sqlite3
from typing import Any

import pytest

from vmprep.server.store import Attestation, SqliteStore


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request, tmp_path):
    from tests.server.test_store_conformance import open_store

    s = open_store(request.param, tmp_path, request)
    yield s
    s.close()


def test_a_nonce_is_taken_once_and_names_its_instance(store):
    assert store.add_nonce("0123456789", "vm-1", 1300.0, 1000.0, 5) == "stored"
    assert store.take_nonce("0123456789", 1100.0) == "vm-1"
    assert store.take_nonce("0123456789", 1100.0) is None  # single use


def test_an_expired_nonce_is_refused_and_gone(store):
    store.add_nonce("0000000001", "vm-1", 1300.0, 1000.0, 5)
    assert store.take_nonce("0000000001", 1300.0) is None
    assert store.take_nonce("0000000001", 1000.0) is None  # deleted on the failed take too


def test_an_unknown_nonce_is_refused(store):
    assert store.take_nonce("9999999999", 0.0) is None


def test_outstanding_nonces_per_instance_are_capped_and_expired_ones_do_not_count(store):
    for n in range(3):
        assert store.add_nonce(f"{n:010d}", "vm-1", 1300.0, 1000.0, 3) == "stored"
    assert store.add_nonce("0000000009", "vm-1", 1300.0, 1000.0, 3) == "full"
    assert store.add_nonce("0000000009", "vm-2", 1300.0, 1000.0, 3) == "stored"
    assert store.add_nonce("0000000010", "vm-1", 1700.0, 1300.0, 3) == "stored"  # 3 expired


def test_an_outstanding_nonce_is_not_issued_twice(store):
    store.add_nonce("0000000001", "vm-1", 1300.0, 1000.0, 5)
    assert store.add_nonce("0000000001", "vm-2", 1300.0, 1000.0, 5) == "taken"
    assert store.take_nonce("0000000001", 1000.0) == "vm-1"


def record(**kw: Any) -> Any:
    base = {
        "instance_id": "vm-1",
        "role": "web",
        "kind": "azure-imds",
        "attested_id": "vm-1",
        "scope": "sub-1",
        "issued_at": 900.0,
        "first_at": 1000.0,
        "last_at": 1000.0,
    }
    return Attestation(**{**base, **kw})


def test_the_first_admission_is_kept_and_later_ones_counted(store):
    assert store.attestation("vm-1") is None
    assert store.add_attestation(record()) == record()
    again = store.add_attestation(record(issued_at=1900.0, first_at=2000.0, last_at=2000.0))
    assert again == record(issued_at=1900.0, first_at=1000.0, last_at=2000.0, admitted=2)
    assert store.attestation("vm-1") == again
    assert again.to_json()["first_at"] == "1970-01-01T00:16:40Z"


def test_a_store_from_before_attestation_gets_its_tables(tmp_path):
    data = tmp_path / "data"
    SqliteStore(data).close()
    db = sqlite3.connect(data / "vmprep.sqlite3")
    db.executescript("DROP TABLE nonces; DROP TABLE attestations;")
    db.close()
    s = SqliteStore(data)
    try:
        assert s.add_nonce("0000000001", "vm-1", 10.0, 0.0, 5) == "stored"
        assert s.attestation("vm-1") is None
    finally:
        s.close()
