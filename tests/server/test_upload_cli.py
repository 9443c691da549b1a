"""`vmprep publish --to`'s command line: what it refuses before touching any store."""

from __future__ import annotations

import pytest

from tests.server.conftest import write_repo
from vmprep.errors import UsageError
from vmprep.server import upload
from vmprep.server.keys import write_keypair
from vmprep.server.upload import Target, parse_target


@pytest.mark.parametrize(
    ("value", "target"),
    [
        ("s3://bucket", Target("s3", "bucket", "")),
        ("s3://bucket/", Target("s3", "bucket", "")),
        ("az://web/fleet/prod/", Target("az", "web", "fleet/prod")),
        ("gs://b//x", Target("gs", "b", "x")),
    ],
)
def test_targets(value: str, target: Target) -> None:
    assert parse_target(value) == target
    assert target.key("a") == (f"{target.prefix}/a" if target.prefix else "a")


@pytest.mark.parametrize(
    "value", ["s3:/b", "ftp://b/x", "s3:///x", "s3://b/../x", "gs://b/x?y=1", "az://c/./x"]
)
def test_bad_targets_are_usage_errors(value: str) -> None:
    with pytest.raises(UsageError):
        parse_target(value)


def test_exactly_one_destination_and_a_readable_grace(run_vmprep, tmp_path) -> None:
    configs = write_repo(tmp_path / "configs")
    write_keypair(tmp_path / "k")
    base = ["publish", "--configs", str(configs), "--key", str(tmp_path / "k.pem")]
    assert "exactly one" in run_vmprep(*base, expect=2).stderr
    assert "exactly one" in run_vmprep(*base, "-o", "x", "--to", "s3://b/p", expect=2).stderr
    out = run_vmprep(*base, "-o", str(tmp_path / "x"), "--endpoint-url", "http://h", expect=2)
    assert "--endpoint-url goes with --to" in out.stderr
    out = run_vmprep(*base, "--to", "s3://b/p", "--grace", "soon", expect=2)
    assert "--grace" in out.stderr
    assert "not a duration" in out.stderr
    assert "expected s3://" in run_vmprep(*base, "--to", "s4://b", expect=2).stderr


def test_a_missing_extra_is_named(run_vmprep, tmp_path, monkeypatch) -> None:
    # as when `pip install vmprep[server]` did not bring the Azure SDK
    monkeypatch.setitem(upload.PROVIDERS, "az", ("azure", "azure", ("vmprep_absent_sdk",)))
    configs = write_repo(tmp_path / "configs")
    write_keypair(tmp_path / "k")
    out = run_vmprep(
        "publish",
        "--configs",
        str(configs),
        "--key",
        str(tmp_path / "k.pem"),
        "--to",
        "az://c/p",
        expect=2,
    )
    assert "vmprep's `azure` extra" in out.stderr
    assert "pip install 'vmprep[azure]'" in out.stderr


def test_azure_without_an_account_says_how_to_name_one(run_vmprep, tmp_path, monkeypatch) -> None:
    pytest.importorskip("azure.storage.blob")
    monkeypatch.delenv("AZURE_STORAGE_CONNECTION_STRING", raising=False)
    monkeypatch.delenv("AZURE_STORAGE_ACCOUNT", raising=False)
    configs = write_repo(tmp_path / "configs")
    write_keypair(tmp_path / "k")
    out = run_vmprep(
        "publish",
        "--configs",
        str(configs),
        "--key",
        str(tmp_path / "k.pem"),
        "--to",
        "az://c/p",
        expect=2,
    )
    assert "which storage account?" in out.stderr
    assert "AZURE_STORAGE_ACCOUNT" in out.stderr
