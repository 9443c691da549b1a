"""examples/packer: the spec is valid, the template runs the command the docs promise, and it
builds offline with the bundled runtime (docs/runtime.md)."""

from __future__ import annotations

import re

from tests.conftest import EXAMPLES
from vmprep.spec import check_file

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
