"""Checks of `agent.runtime.embedded`: the bundled CPython zip (vmprep.spec.embedded)."""

from __future__ import annotations

from collections.abc import Iterator

from vmprep.spec.checks import Doc, Finding, check, quoted
from vmprep.spec.embedded import EmbeddedZipError, interpreter_path, read_zip, zip_path
from vmprep.spec.winrules import setupcomplete_path_problem, windows_path_problem

_WHERE = ("agent", "runtime", "embedded")


@check("embedded-runtime")
def embedded_runtime(doc: Doc) -> Iterator[Finding]:
    """The zip is read when it is there (sha256, layout, architecture). A zip that is not
    there yet is no problem here: it is fetched or built later in many pipelines, and render
    refuses to run without it (docs/runtime.md)."""
    runtime = doc.data["agent"]["runtime"]
    if "embedded" not in runtime:
        return
    install_dir = doc.data["agent"]["install_dir"]
    if (
        windows_path_problem(install_dir) is None
        and setupcomplete_path_problem(install_dir) is None
    ):
        python = interpreter_path(install_dir)
        reason = setupcomplete_path_problem(python)
        if reason is not None:
            msg = f"the bundled interpreter {quoted(python)} {reason}"
            yield Finding(("agent", "install_dir"), msg, hint="choose a shorter agent.install_dir")
    embedded = runtime["embedded"]
    if doc.base is None:
        return
    path = zip_path(embedded["zip"], doc.base)
    if not path.is_file():
        return
    try:
        found = read_zip(path, embedded["sha256"])
    except EmbeddedZipError as exc:
        hint = "download it again from python.org and compare its sha256 with the one published"
        yield Finding((*_WHERE, "zip"), str(exc), hint=hint)
        return
    wanted = doc.data["image"]["architecture"]
    if found.architecture != wanted:
        msg = (
            f"{embedded['zip']} is {found.describe()} (python.exe's PE header), "
            f"but image.architecture is {wanted}"
        )
        suffix = "win32" if wanted == "x86" else wanted  # python.org's file names
        hint = f"use python-{found.full_version}-embed-{suffix}.zip, or fix image.architecture"
        yield Finding((*_WHERE, "zip"), msg, hint=hint)
