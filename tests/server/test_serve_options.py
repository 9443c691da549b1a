"""`vmprep serve` refuses bad options before it creates anything or starts listening."""

from __future__ import annotations

from pathlib import Path

from tests.server.conftest import write_repo
from vmprep.server.keys import write_keypair


def _args(tmp_path: Path, *extra: str) -> list[str]:
    configs = write_repo(tmp_path / "configs")
    write_keypair(tmp_path / "k")
    data = str(tmp_path / "data")
    return ["serve", "--configs", str(configs), "--key", str(tmp_path / "k.pem"),
            "--data-dir", data, "--port", "0", "--poll", "0", *extra]  # fmt: skip


def test_an_unusable_tls_certificate_is_an_input_error_not_an_internal_one(run_vmprep, tmp_path):
    bad = tmp_path / "cert.pem"
    bad.write_text("not a certificate\n")
    result = run_vmprep(*_args(tmp_path, "--certfile", str(bad), "--keyfile", str(bad)), expect=1)
    assert f"error: cannot use {bad} and {bad} for TLS" in result.stderr
    assert "--certfile" in result.stderr
    assert "internal error" not in result.stderr
    assert not (tmp_path / "data").exists()  # refused before the store was created


def test_a_missing_tls_key_file_is_refused_as_usage(run_vmprep, tmp_path):
    result = run_vmprep(*_args(tmp_path, "--certfile", str(tmp_path / "nope.pem")), expect=2)
    assert "nope.pem" in result.stderr
