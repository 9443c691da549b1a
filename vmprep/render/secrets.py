"""Secret references: found by walking the spec alongside its schema, resolved at render time.

`{env: NAME}` reads the environment, `{file: path}` reads a file (relative to the spec file;
one trailing line ending is dropped). `{secret: name}` stays a reference: the configuration
service delivers it at first boot. The walk follows the schema rather than guessing from the
shape of a value, so an `exec.env` variable that happens to be called `file` is not mistaken
for a reference.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vmprep.problems import Problem, ref_name
from vmprep.render.errors import RenderError, problem
from vmprep.spec import Spec
from vmprep.spec.load import JsonPath


@dataclass(frozen=True)
class SecretRef:
    path: JsonPath  # where the reference sits in the spec
    kind: str  # "env" | "file" | "secret"
    target: str  # the variable name, the path as written, or the secret name

    @property
    def name(self) -> str:
        """The name the agent knows a baked secret by (docs/internals.md)."""
        return self.target if self.kind == "secret" else f"{self.kind}:{self.target}"

    def describe(self) -> str:
        return f"{{{self.kind}: {ref_name(self.kind, self.target)}}}"


def find_refs(spec: Spec, under: JsonPath = ()) -> list[SecretRef]:
    """Every secret reference in the spec (below `under`), in document order."""
    from vmprep.spec.schema import schema

    root = schema()
    node: Any = root
    value: Any = spec.data
    for key in under:
        node = _child(_resolve(node, root), value, key, root)
        value = value[key]
    return list(_walk(value, node, under, root))


def _resolve(node: Any, root: dict[str, Any]) -> Any:
    while isinstance(node, dict) and "$ref" in node:
        node = root["$defs"][node["$ref"].rsplit("/", 1)[-1]]
    return node


def _child(node: Any, value: Any, key: str | int, root: dict[str, Any]) -> Any:
    node = _branch(node, value, root) if isinstance(node, dict) else None
    if not isinstance(node, dict):
        return None
    if isinstance(key, int):
        return node.get("items")
    props = node.get("properties", {})
    if key in props:
        return props[key]
    extra = node.get("additionalProperties")
    return extra if isinstance(extra, dict) else None


def _branch(node: dict[str, Any], value: Any, root: dict[str, Any]) -> Any:
    """The `oneOf` branch that describes `value` (by JSON type), or `node` itself."""
    branches = node.get("oneOf") or node.get("anyOf")
    if not branches or "properties" in node:
        return node
    want = "object" if isinstance(value, dict) else "array" if isinstance(value, list) else None
    for branch in branches:
        branch = _resolve(branch, root)
        if want and (branch.get("type") == want or (want == "object" and "properties" in branch)):
            return branch
    return None


def _walk(value: Any, node: Any, path: JsonPath, root: dict[str, Any]) -> Iterator[SecretRef]:
    secret_ref = root["$defs"]["secretRef"]
    node = _resolve(node, root)
    if not isinstance(node, dict):
        return
    node = _branch(node, value, root)
    if node is secret_ref:
        if isinstance(value, dict) and len(value) == 1:
            ((kind, target),) = value.items()
            yield SecretRef(path, kind, target)
        return
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _walk(item, _child(node, value, key, root), (*path, key), root)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _walk(item, _child(node, value, index, root), (*path, index), root)


def resolve(
    spec: Spec, refs: list[SecretRef], environ: Mapping[str, str], allowed: Sequence[Path] = ()
) -> dict[str, str]:
    """Values of the env/file references by `SecretRef.name`; every failure in one error."""
    values: dict[str, str] = {}
    problems: list[Problem] = []
    for ref in refs:
        if ref.kind == "secret" or ref.name in values:
            continue
        value, error = _read(spec, ref, environ, allowed)
        if error is not None:
            problems.append(problem(spec, ref.path, "secret", f"{ref.describe()}: {error}"))
            continue
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            error = "the value is not valid Unicode text"
            problems.append(problem(spec, ref.path, "secret", f"{ref.describe()}: {error}"))
            continue
        why = password_problem(value) if ref.path[-1:] == ("password",) else None
        if why:
            problems.append(problem(spec, ref.path, "password", f"{ref.describe()}: {why}"))
            continue
        values[ref.name] = value
    if problems:
        raise RenderError(problems, hint="set the variable or create the file, then render again")
    return values


# Windows takes local account passwords of up to 127 characters ("Passwords can be up to 127
# characters", https://learn.microsoft.com/en-us/previous-versions/windows/it-pro/windows-server-2012-r2-and-2012/cc771865(v=ws.11)),
# and after Setup it replaces every password in the answer file with this placeholder
# (https://learn.microsoft.com/en-us/windows-hardware/manufacture/desktop/windows-setup-automation-overview):
# a value copied back from a used unattend.xml is not the password.
MAX_PASSWORD = 127
SCRUBBED = "*SENSITIVE*DATA*DELETED*"


def password_problem(value: str) -> str | None:
    """Why a resolved password cannot be used (never showing it), or None."""
    if not value.strip():
        return "the password is empty (a secret file holding only a line ending is empty too)"
    if len(value) > MAX_PASSWORD:
        return f"the password is {len(value)} characters long; Windows takes at most {MAX_PASSWORD}"
    if SCRUBBED in value:
        return f"the password is {SCRUBBED}, what Windows writes after removing a password"
    return None


def _read(
    spec: Spec, ref: SecretRef, environ: Mapping[str, str], allowed: Sequence[Path]
) -> tuple[str, str | None]:
    if ref.kind == "env":
        if ref.target not in environ:
            return "", f"the environment variable {ref_name('env', ref.target)} is not set"
        return environ[ref.target], None
    from vmprep.secretfile import read_secret_file

    text, why = read_secret_file(ref.target, spec.path.parent, allowed)
    if text is None:
        return "", why
    for ending in ("\r\n", "\n"):
        if text.endswith(ending):
            return text[: -len(ending)], None
    return text, None
