"""examples/packer: the spec is valid, the template runs the command the docs promise, and it
builds offline with the bundled runtime (docs/runtime.md)."""

from __future__ import annotations

import re

import pytest

from tests.conftest import EXAMPLES
from vmprep.spec import check_file, load_spec

PACKER = EXAMPLES / "packer"
TEMPLATE = (PACKER / "windows.pkr.hcl").read_text()


def fill_spec(directory, zip_name: str, sha256: str):
    """spec.yaml as Packer's templatefile() writes it."""
    text = (PACKER / "spec.yaml.pkrtpl").read_text()
    assert set(re.findall(r"\$\{(\w+)\}", text)) == {"python_embed_zip", "python_embed_sha256"}
    text = text.replace("${python_embed_zip}", zip_name).replace("${python_embed_sha256}", sha256)
    path = directory / "spec.yaml"
    path.write_text(text)
    return path


def test_the_packer_spec_is_valid_and_bundles_the_runtime(tmp_path, embed_zip):
    zip_file, sha = embed_zip
    (tmp_path / zip_file.name).write_bytes(zip_file.read_bytes())
    spec = fill_spec(tmp_path, zip_file.name, sha)
    assert [p for p in check_file(spec) if p.is_error] == []
    assert "runtime" not in {p.code for p in check_file(spec)}  # an interpreter is set
    wrong = fill_spec(tmp_path, zip_file.name, "0" * 64)
    assert [p.code for p in check_file(wrong) if p.is_error] == ["embedded-runtime"]


def test_the_template_fills_the_spec_from_the_variables_that_pin_the_zip():
    assert 'templatefile("${path.root}/spec.yaml.pkrtpl"' in TEMPLATE
    assert "python_embed_zip    = basename(var.python_embed_zip)" in TEMPLATE
    assert "python_embed_sha256 = lower(var.python_embed_sha256)" in TEMPLATE
    assert "sources     = [var.python_installer, var.python_embed_zip]" in TEMPLATE


def test_the_template_builds_offline():
    assert "Invoke-WebRequest" not in TEMPLATE
    assert "--no-index --find-links '${local.staging}\\\\wheelhouse' vmprep" in TEMPLATE
    assert 'source      = "${var.vmprep_wheelhouse}/"' in TEMPLATE
    assert "vmprep wheelhouse -o DIR --platform win_amd64 --python-version 3.12" in TEMPLATE


def test_the_template_generalizes_without_shutdown_as_its_last_provisioner():
    provisioners = [m.start() for m in re.finditer(r'provisioner "', TEMPLATE)]
    last = TEMPLATE[provisioners[-1] :]
    assert "-m vmprep --no-color sysprep --generalize --no-shutdown" in last
    assert "exit $code" in last
    assert TEMPLATE.count("{") == TEMPLATE.count("}")
    # The Python that runs vmprep goes where the `python` preflight check would accept it.
    assert "InstallAllUsers=1" in TEMPLATE
    assert "C:\\\\Program Files\\\\Python312\\\\python.exe" in TEMPLATE


def test_rule_azure_arm_template_runs_no_answer_file_sysprep(tmp_path, embed_zip):
    """Azure does not support custom answer files: the azure-arm spec is `platform: azure`, so
    `vmprep sysprep --generalize` renders none and passes no /unattend (tests/sysprep/
    test_platforms.py checks that flow); no administrator password travels with the build."""
    zip_file, sha = embed_zip
    (tmp_path / zip_file.name).write_bytes(zip_file.read_bytes())
    spec = load_spec(fill_spec(tmp_path, zip_file.name, sha))
    assert spec.image["platform"] == "azure"
    assert "administrator" not in spec.setup
    text = (PACKER / "windows.pkr.hcl").read_text()
    assert 'source "azure-arm"' in text
    assert "VMPREP_ADMIN_PASSWORD" not in text
    assert "/unattend" not in text


@pytest.mark.parametrize(
    ("folder", "builder", "platform"),
    [("amazon-ebs", "amazon-ebs", "aws"), ("googlecompute", "googlecompute", "gce")],
)
def test_cloud_templates_generalize_with_their_platform_spec(folder, builder, platform):
    text = (PACKER / folder / "windows.pkr.hcl").read_text()
    assert f'source "{builder}" "reference"' in text
    assert text.count("{") == text.count("}")
    spec_name = f"{platform}.yaml"
    assert f'"${{path.root}}/../../platforms/{spec_name}"' in text
    spec = load_spec(EXAMPLES / "platforms" / spec_name)
    assert spec.image["platform"] == platform
    provisioners = [m.start() for m in re.finditer(r'provisioner "', text)]
    last = text[provisioners[-1] :]
    assert f"sysprep --generalize --no-shutdown '${{local.staging}}\\\\{spec_name}'" in last
    assert "exit $code" in last
    assert '"${path.root}/../scripts/install-python.ps1"' in text  # one installer script
    assert (PACKER / "scripts" / "install-python.ps1").is_file()
