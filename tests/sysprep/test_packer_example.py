"""examples/packer: the spec is valid and the template runs the command the docs promise."""

from __future__ import annotations

import re

from tests.conftest import EXAMPLES
from vmprep.spec import check_file

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
    assert "InstallAllUsers=1" in text
    assert "C:\\\\Program Files\\\\Python312\\\\python.exe" in text
    assert "C:\\Program Files\\Python312\\python.exe" in (PACKER / "spec.yaml").read_text()
