"""`vmprep validate SPEC --config-repo DIR`: a spec against the role it phones home for."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import ROOT

EXAMPLES = ROOT / "examples"
ROLE = """\
version: 1
kind: RoleConfig
role: app
secrets: {join_user: {env: A}, join_password: {env: B}}
variables: {host: APP-1}
steps:
  - {id: join, join_domain: {domain: corp.example.com, credentials: remote}}
instances:
  - match: {instance_id: i-1}
    secrets: {svc_app_password: {env: C}}
"""


def repo(tmp_path: Path, text: str = ROLE) -> Path:
    root = tmp_path / "configs"
    root.mkdir()
    (root / "app.yaml").write_text(text, encoding="utf-8")
    return root


def test_the_domain_joined_example_fits_its_role(run_vmprep) -> None:
    r = run_vmprep(
        "validate", str(EXAMPLES / "domain-joined.yaml"), "--config-repo", str(EXAMPLES / "configs")
    )
    assert "role-secret" not in r.stdout + r.stderr
    assert "config-repo" not in r.stdout + r.stderr


def test_a_secret_the_role_does_not_declare_is_an_error(run_vmprep, tmp_path: Path) -> None:
    spec = EXAMPLES / "domain-joined.yaml"
    text = ROLE.replace("instances:\n  - match: {instance_id: i-1}\n", "").replace(
        "    secrets: {svc_app_password: {env: C}}\n", ""
    )
    r = run_vmprep("validate", str(spec), "--config-repo", str(repo(tmp_path, text)), expect=1)
    out = r.stdout + r.stderr
    assert "error: secret 'svc_app_password' is not declared by role 'app'" in out
    assert "(role-secret)" in out


def test_a_secret_declared_for_some_instances_only_is_a_warning(run_vmprep, tmp_path: Path) -> None:
    spec = EXAMPLES / "domain-joined.yaml"
    r = run_vmprep("validate", str(spec), "--config-repo", str(repo(tmp_path)))
    assert "warning: secret 'svc_app_password' is declared by role 'app'" in r.stdout + r.stderr
    assert "only for instances matching i-1" in r.stdout + r.stderr


def test_an_unknown_role_is_an_error(run_vmprep, tmp_path: Path) -> None:
    spec = EXAMPLES / "web-role.yaml"
    r = run_vmprep("validate", str(spec), "--config-repo", str(repo(tmp_path)), expect=1)
    assert "role 'web' is not in the config repository" in r.stdout + r.stderr


def test_a_baked_rename_after_the_roles_join_is_fine_when_the_role_names_it(
    run_vmprep, tmp_path: Path
) -> None:
    spec = tmp_path / "spec.yaml"
    text = (EXAMPLES / "domain-joined.yaml").read_text(encoding="utf-8")
    # the role joins at the fetch; a baked rename after it is merged into the join (its name
    # is the role's variable) ...
    start = text.index("    - id: rename")
    end = text.index("    - id: after-join")
    spec.write_text(text[:start] + "    - id: rename\n      rename_computer: {name: '{host}'}\n"
                    + text[end:], encoding="utf-8")  # fmt: skip
    r = run_vmprep("validate", str(spec), "--config-repo", str(repo(tmp_path)))
    assert "rename-after-join" not in r.stdout + r.stderr
    # ... unless the name needs a variable the role does not have
    spec.write_text(text[:start] + "    - id: rename\n      rename_computer: {name: '{other}'}\n"
                    + text[end:], encoding="utf-8")  # fmt: skip
    r = run_vmprep("validate", str(spec))  # without the role, validate cannot tell
    assert "rename-after-join" not in r.stdout + r.stderr
    (tmp_path / "b").mkdir()
    r = run_vmprep("validate", str(spec), "--config-repo", str(repo(tmp_path / "b")))
    out = r.stdout + r.stderr
    assert "warning: rename 'rename' comes after join 'join', and its name needs {other}" in out
    assert "(rename-after-join)" in out


def test_a_config_repo_that_is_not_a_directory_is_a_usage_error(run_vmprep, tmp_path) -> None:
    r = run_vmprep(
        "validate", str(EXAMPLES / "minimal.yaml"), "--config-repo", str(tmp_path / "no"), expect=2
    )
    assert "--config-repo" in r.stderr
