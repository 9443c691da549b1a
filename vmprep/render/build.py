"""`render`: a checked spec -> the bytes of every file of the system-drive overlay.

Pure apart from reading secret files and the environment: no clock, no randomness, nothing
written (`write_tree` writes). The same spec, secrets and vmprep version give the same bytes.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vmprep.agent.platform.taskxml import command_problem, task_action
from vmprep.problems import Problem
from vmprep.render import agentjson, manifest, payload, runtime, secrets
from vmprep.render.errors import RenderError, problem
from vmprep.render.hooks import hook_files, hook_script
from vmprep.render.paths import on_system_drive, overlay_path
from vmprep.render.platformsteps import platform_steps
from vmprep.render.runtime import Bundle, RuntimeChoice
from vmprep.render.unattend import render_unattend
from vmprep.render.xmlbuild import Setting
from vmprep.spec import Spec
from vmprep.spec.embedded import EmbeddedZipError, interpreter_path, zip_path
from vmprep.spec.platforms import platform_of
from vmprep.spec.winrules import setupcomplete_path_problem

UNATTEND = "Windows/Panther/unattend.xml"
SETUPCOMPLETE = "Windows/Setup/Scripts/SetupComplete.cmd"


@dataclass(frozen=True)
class RenderResult:
    files: dict[str, bytes]  # overlay-relative POSIX path -> bytes
    targets: dict[str, str]  # the same keys -> Windows path
    manifest: dict[str, Any]
    launch: Launch  # SetupComplete.cmd's interpreter, install dir and chained script
    settings: list[Setting] = field(default_factory=list)  # what unattend.xml sets, and why
    runtime: Bundle | None = None  # the bundled CPython, when there is one

    def manifest_bytes(self) -> bytes:
        return manifest.manifest_bytes(self.manifest)

    def summary(self) -> list[str]:
        """What `render` says after writing: the size of the overlay, and of the runtime."""
        size = sum(len(data) for data in self.files.values())
        lines = [f"{len(self.files)} files, {runtime.megabytes(size)}"]
        if self.runtime is not None:
            lines.append(self.runtime.summary())
        return lines


@dataclass(frozen=True)
class Launch:
    """The three paths SetupComplete.cmd is made of, each checked, with where it came from."""

    python: str
    python_source: str  # "--python", "agent.runtime.python", "the running interpreter",
    # "agent.runtime.embedded" or "--embedded-python" (then `runtime` says which zip)
    install_dir: str
    chain: str | None
    runtime: RuntimeChoice | None = None

    @property
    def payload_dir(self) -> str:
        return overlay_path(self.install_dir)


def render(
    spec: Spec,
    python: str | None = None,
    chain_setupcomplete: str | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    platform: str = sys.platform,
    base_python: str | None = None,
    agent_dir: Path | None = None,
    allow_secret_paths: Sequence[str | Path] = (),
    placeholders: bool = False,
    embedded: tuple[Path, str] | None = None,
) -> RenderResult:
    """Everything that goes into the image; raises RenderError (nothing to write) on problems.
    `allow_secret_paths`: directories outside the spec's that `{file:}` may read.
    `placeholders`: every secret is `<secret:NAME>` and nothing is read for it. `embedded`
    (zip, sha256) bundles that embeddable CPython, overriding the spec's runtime; `python`
    names an interpreter on the image instead. Not both."""
    launch = plan_launch(spec, python, chain_setupcomplete, platform, base_python, embedded)
    bundled = load_bundle(spec, launch)
    refs = secrets.find_refs(spec)
    _refuse_boot_secrets_in_setup(spec, refs)
    if placeholders:  # `vmprep plan`: what would be rendered, without any secret's value
        values = {ref.name: f"<secret:{ref.name}>" for ref in refs}
    else:
        from vmprep.secretfile import allowed_dirs

        allowed = allowed_dirs(allow_secret_paths)
        values = secrets.resolve(spec, refs, os.environ if environ is None else environ, allowed)
    by_path = {ref.path: ref for ref in refs}
    rules = platform_of(spec.data)
    files: dict[str, bytes] = {}
    settings: list[Setting] = []
    if rules.answer_file:
        files[UNATTEND], settings = render_unattend(spec, lambda path: values[by_path[path].name])
    agent_refs = [ref for ref in refs if ref.path[0] == "agent"]
    runtime_json = {"python": launch.python, "bundled": bundled is not None}
    agent = agentjson.agent_settings(
        spec, agent_refs, values, platform_steps(spec, rules), runtime_json
    )
    try:
        agent_json = agentjson.render_agent_json(agent)
    except UnicodeEncodeError as exc:
        raise RenderError(
            [problem(spec, ("agent",), "agent-json", "a value is not valid Unicode text")]
        ) from exc
    files.update(hook_files(rules, launch.python, launch.install_dir, launch.chain))
    files[f"{launch.payload_dir}/agent.pyz"] = payload.build_payload(agent_dir)
    files[f"{launch.payload_dir}/agent.json"] = agent_json
    files.update(bundled.files if bundled else {})
    targets = {name: "C:\\" + name.replace("/", "\\") for name in files}
    built = manifest.build_manifest(
        files, targets, spec.path.name, spec.sha256, payload.vendored_versions()
    )
    built["platform"] = {"name": rules.name, "flow": rules.flow(launch.install_dir)}
    built["runtime"] = (
        bundled.manifest_entry(launch.python)
        if bundled
        else {"kind": "installed", "python": launch.python}
    )
    return RenderResult(files, targets, built, launch, settings, bundled)


def load_bundle(spec: Spec, launch: Launch) -> Bundle | None:
    """The bundled runtime's files, checked against the pin and image.architecture."""
    choice = launch.runtime
    if choice is None:
        return None
    where: tuple[str, ...] = ()
    if choice.source == "agent.runtime.embedded":
        where = ("agent", "runtime", "embedded", "zip")
    try:
        found = runtime.load(choice)
        bundled = runtime.bundle(found, choice.zip.name, launch.payload_dir)
    except EmbeddedZipError as exc:
        hint = "download it again from python.org and compare its sha256 with the one published"
        raise RenderError([problem(spec, where, "embedded-runtime", str(exc))], hint=hint) from None
    wanted = spec.image["architecture"]
    if found.architecture != wanted:
        message = (
            f"{choice.source} {choice.zip} is {found.describe()} (python.exe's PE header), "
            f"but image.architecture is {wanted}"
        )
        raise RenderError([problem(spec, where, "embedded-runtime", message)])
    return bundled


def plan_launch(
    spec: Spec,
    python: str | None,
    chain: str | None,
    platform: str = sys.platform,
    base_python: str | None = None,
    embedded: tuple[Path, str] | None = None,
) -> Launch:
    problems: list[Problem] = []
    runtime_path: tuple[str, ...] = ("agent", "runtime", "python")
    choice = None
    if python is not None and embedded is not None:
        raise RenderError(
            [problem(spec, (), "runtime", "--python and --embedded-python both name the runtime")],
            hint="pass one: an interpreter on the image, or a zip to bundle",
        )
    if embedded is not None:
        choice = RuntimeChoice(embedded[0], embedded[1], "--embedded-python")
    elif python is None and "embedded" in spec.agent["runtime"]:
        pinned = spec.agent["runtime"]["embedded"]
        zip_file = zip_path(pinned["zip"], spec.path.parent)
        choice = RuntimeChoice(zip_file, pinned["sha256"], "agent.runtime.embedded")
    if choice is not None:
        python, source = interpreter_path(spec.agent["install_dir"]), choice.source
        runtime_path = ("agent", "install_dir")
    elif python is not None:
        source = "--python"
    elif "python" in spec.agent["runtime"]:
        python, source = spec.agent["runtime"]["python"], "agent.runtime.python"
    elif platform == "win32":
        python = base_python or getattr(sys, "_base_executable", None) or sys.executable
        source = "the running interpreter"
    else:
        raise RenderError(
            [problem(spec, ("agent",), "runtime", "no interpreter for the image is known")],
            hint="set agent.runtime.python to the path of python.exe on the image, "
            "e.g. 'C:\\Program Files\\Python312\\python.exe' (or pass --python)",
        )
    reason = setupcomplete_path_problem(python)
    if reason is not None:
        problems.append(problem(spec, runtime_path, "runtime", f"{source} {python!r} {reason}"))
    install_dir = spec.agent["install_dir"]
    reason = setupcomplete_path_problem(install_dir)
    if reason is None and not on_system_drive(install_dir):
        reason = "must be on the system drive C: (render writes a system-drive overlay)"
    if reason is not None:
        message = f"agent.install_dir {install_dir!r} {reason}"
        problems.append(problem(spec, ("agent", "install_dir"), "install-dir", message))
    if chain is not None:
        reason = setupcomplete_path_problem(chain)
        if reason is None and not chain.lower().endswith((".cmd", ".bat")):
            reason = "must name a .cmd or .bat script"
        hook = hook_script(platform_of(spec.data), install_dir)
        if reason is None and chain.lower() == hook.lower():
            reason = f"is {hook.rsplit(chr(92), 1)[1]} itself"
        if reason is not None:
            message = f"--chain-setupcomplete {chain!r} {reason}"
            problems.append(problem(spec, (), "chain", message))
    if not problems:
        why = task_command_problem(python, install_dir)
        if why is not None:
            message = f"the startup task cannot start the agent with {source} {python!r}: {why}"
            problems.append(problem(spec, runtime_path, "task-command", message))
    if problems:
        raise RenderError(problems)
    return Launch(python, source, install_dir, chain, choice)


def task_command_problem(python: str, install_dir: str) -> str | None:
    """Whether the startup task can hold the command `run` is started with (the same argv the
    agent builds at first boot: `launch` carries SetupComplete.cmd's `-I -S` over)."""
    argv = [python, "-I", "-S", f"{install_dir}\\agent.pyz", "run"]
    argv += ["--config", f"{install_dir}\\agent.json"]
    return command_problem(*task_action(argv))


def _refuse_boot_secrets_in_setup(spec: Spec, refs: list[secrets.SecretRef]) -> None:
    problems = [
        problem(
            spec,
            ref.path,
            "secret",
            f"{ref.describe()} is delivered at first boot, too late for unattend.xml; "
            "use {env: NAME} or {file: path}",
        )
        for ref in refs
        if ref.kind == "secret" and ref.path[0] == "setup"
    ]
    if problems:
        raise RenderError(problems)
