"""examples/packer: the spec is valid and the template runs the command the docs promise."""

from __future__ import annotations

import re

import pytest

from tests.conftest import EXAMPLES
from vmprep.spec import check_file, load_spec

PACKER = EXAMPLES / "packer"


def test_the_packer_spec_is_valid():
    assert [p for p in check_file(PACKER / "spec.yaml") if p.is_error] == []


def test_the_template_generalizes_without_shutdown_as_its_last_provisioner():
    text = (PACKER / "windows.pkr.hcl").read_text()
    provisioners = [m.start() for m in re.finditer(r'provisioner "', text)]
    last = text[provisioners[-1] :]
    assert "-m vmprep --no-color sysprep --generalize --no-shutdown" in last
    assert "exit $code" in last
    assert text.count("{") == text.count("}")
    # Python goes where the `python` preflight check accepts it and the spec points.
    assert '"${path.root}/scripts/install-python.ps1"' in text
    assert "InstallAllUsers=1" in (PACKER / "scripts" / "install-python.ps1").read_text()
    assert "C:\\\\Program Files\\\\Python312\\\\python.exe" in text
    assert "C:\\Program Files\\Python312\\python.exe" in (PACKER / "spec.yaml").read_text()


def test_rule_azure_arm_template_runs_no_answer_file_sysprep():
    """Azure does not support custom answer files: the azure-arm spec is `platform: azure`, so
    `vmprep sysprep --generalize` renders none and passes no /unattend (tests/sysprep/
    test_platforms.py checks that flow); no administrator password travels with the build."""
    spec = load_spec(PACKER / "spec.yaml")
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
