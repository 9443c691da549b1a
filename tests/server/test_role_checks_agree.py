"""`vmprep validate`, `vmprep publish` and serve's loader agree on every RoleConfig check.

One bad RoleConfig per check registered for `roleConfig` (vmprep/spec/checks.py CHECKS): the
table must name exactly those codes, so a new check cannot be left out. An error refuses the
file everywhere with the same code; a warning shows in validate and refuses nothing."""

from __future__ import annotations

from pathlib import Path

import pytest

from vmprep.server.keys import write_keypair
from vmprep.server.repo import RepositoryError, load_repository
from vmprep.spec.checks import all_checks
from vmprep.spec.pipeline import check_file

SHA = "a" * 64
HEAD = "version: 1\nkind: RoleConfig\nrole: web\n"


def _steps(*steps: str) -> str:
    return "steps:\n" + "".join(f"  - {s}\n" for s in steps)


# code -> (the body after HEAD, True for an error / False for a warning)
BAD: dict[str, tuple[str, bool]] = {
    "ttl": ("ttl: 10s\n", True),
    "attestation": ("attestation_allow: {accounts: ['123456789012']}\n", True),
    "secret-reference": ("secrets:\n  pw: {secret: other}\n", True),
    "undeclared-secret": (
        _steps("{id: e, env: {name: X, value: {secret: pw}}}")
        + "instances:\n  - match: {name: 'WEB-*'}\n    secrets: {pw: {env: PW}}\n",
        True,
    ),
    "secret-ref": (_steps("{id: e, env: {name: X, value: {secret: nope}}}"), True),
    "registry-value": (
        _steps(r"{id: r, registry: {key: 'HKLM\X', name: v, type: REG_DWORD, value: '1'}}"),
        True,
    ),
    "join-domain": (
        "secrets: {join_user: {env: U}, join_password: {env: P}}\n"
        + _steps("{id: j, join_domain: {domain: ABCDEFGHIJKLMNOPQ, credentials: remote}}"),
        True,
    ),
    "file-content": (
        _steps(r"{id: f, file: {path: 'C:\a.txt', content: '!!!', encoding: base64}}"),
        True,
    ),
    "wait-for": (_steps("{id: w, wait_for: {tcp: 'db:99999'}}"), True),
    "duration": (_steps("{id: r, reboot: {}, timeout: 1.0e+308}"), True),
    "env-self-reference": (_steps(r"{id: e, env: {name: Path, value: '%Path%;C:\t'}}"), True),
    "env-mode": (_steps("{id: e, env: {name: Path, mode: append}}"), True),
    "cmd-code-page": (_steps("{id: c, cmd: 'echo é'}"), False),
    "unique-step-ids": (_steps("{id: a, reboot: {}}", "{id: A, reboot: {}}"), True),
    "when": (_steps("{id: a, reboot: {}, when: {role: db}}"), True),
    "download": (
        _steps(f"{{id: d, download: {{url: 'http://e.com/a', sha256: {SHA}, to: 'C:\\a'}}}}"),
        True,
    ),
    "phone-home": (_steps("{id: p, phone_home: {}}"), True),
    "windows-path": (_steps("{id: w, wait_for: {path: 'x.txt'}}"), True),
    "reboot-budget": (_steps("{id: r, reboot: {}, reboot_budget: 0}"), True),
    "placeholder": (_steps("{id: r, rename_computer: {name: 'WEB-{site}'}}"), True),
    "control-character": (_steps(r'{id: c, cmd: "echo a\x1a"}'), True),
    "computer-name": (_steps("{id: r, rename_computer: {name: '12345'}}"), True),
}
ENV = {"U": "u", "P": "p", "PW": "pw"}


def test_the_table_names_every_role_config_check():
    assert set(BAD) == {code for code, (_, kinds) in all_checks().items() if "roleConfig" in kinds}


@pytest.fixture(scope="module")
def keyfile(tmp_path_factory) -> Path:
    where = tmp_path_factory.mktemp("key")
    write_keypair(where / "k")
    path: Path = where / "k.pem"
    return path


@pytest.mark.parametrize("code", sorted(BAD))
def test_validate_publish_and_serve_agree(code, tmp_path, keyfile, run_vmprep, monkeypatch):
    body, is_error = BAD[code]
    (tmp_path / "c").mkdir()
    role = tmp_path / "c" / "web.yaml"
    role.write_text(HEAD + body)
    found = check_file(role)
    mine = [p for p in found if p.code == code]
    assert mine, f"{code}: the bad RoleConfig does not trip its check: {found}"
    assert all(p.is_error == is_error for p in mine)
    validate = run_vmprep("validate", str(role), expect=1 if is_error else 0)
    assert f"({code})" in validate.stdout + validate.stderr
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    out = tmp_path / "site"
    argv = ["publish", "--configs", str(tmp_path / "c"), "--key", str(keyfile), "-o", str(out)]
    published = run_vmprep(*argv, expect=1 if is_error else 0)
    if is_error:
        assert f"({code})" in published.stderr
        assert not out.exists()
        with pytest.raises(RepositoryError) as info:
            load_repository(tmp_path / "c", ENV)
        assert code in {p.code for p in info.value.problems}
        # the server refuses for exactly the errors validate reports (same place, same text)
        assert sorted(info.value.problems) == sorted(p for p in found if p.is_error)
    else:
        assert sorted(load_repository(tmp_path / "c", ENV).roles) == ["web"]
