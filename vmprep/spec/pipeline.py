"""The check pipeline: a loaded document (a spec or a RoleConfig) through the loader's
problems, the JSON Schema, the defaults and the semantic checks (`vmprep.spec.checks`), and the
loaders that turn a file into a `Spec` or a RoleConfig's data."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from vmprep.problems import Problem
from vmprep.spec.defaults import apply_defaults
from vmprep.spec.load import MAX_BYTES, Loaded, load_bytes, load_file
from vmprep.spec.model import Spec, SpecError

if TYPE_CHECKING:
    from vmprep.spec.checks import Kind


def definition_for(data: Any) -> str | None:
    """The schema definition a document is checked with: `roleConfig` for a config-repository
    file (top-level `kind: RoleConfig`), None (the whole schema) for a spec."""
    if isinstance(data, dict) and data.get("kind") == "RoleConfig":
        return "roleConfig"
    return None


def check_loaded(
    loaded: Loaded, base: Path | None = None
) -> tuple[list[Problem], dict[str, Any] | None]:
    """Every problem of a loaded document, sorted, and its data with defaults when it has no
    errors before the semantic checks. Dispatches on `kind` (see `definition_for`). `base` is
    the file's directory, where the spec's relative local paths start (None: not from a file)."""
    from vmprep.spec.checks import run_checks
    from vmprep.spec.validate import schema_problems, variable_surprises

    problems = list(loaded.problems)
    if not isinstance(loaded.data, dict):
        return sorted(problems), None
    definition = definition_for(loaded.data)
    placed = {p.path for p in problems}  # a value the loader refused gets no second problem
    problems.extend(p for p in schema_problems(loaded, definition) if p.path not in placed)
    if loaded.surprises:
        problems.extend(variable_surprises(loaded))
    if problems:
        return sorted(problems), None
    data = apply_defaults(loaded.data, definition)
    kind: Kind = "roleConfig" if definition else "spec"
    problems.extend(run_checks(loaded, data, kind, base))
    return sorted(problems), data


def check_file(path: Path) -> list[Problem]:
    """Every problem of one file (a spec or a config-repository file), sorted."""
    return check_loaded(load_file(path), path.parent)[0]


def check_bytes(raw: bytes, file: str) -> list[Problem]:
    return check_loaded(load_bytes(raw, file))[0]


def check_data(data: Any, file: str = "<data>") -> list[Problem]:
    """Every problem of already-parsed data (e.g. JSON a server received); lines are 0."""
    return check_loaded(Loaded(file, data, {(): (0, 0)}, ()))[0]


def load_spec(path: Path) -> Spec:
    """Load, validate and fill in defaults; raises SpecError (exit 1) with every error."""
    raw, loaded = _read(path)
    problems, data = check_loaded(loaded, path.parent)
    if data is not None and definition_for(data):
        where = Problem(str(path), 1, 1, "kind", "this is a config-repository file, not a spec")
        problems = [where]
    errors = [p for p in problems if p.is_error]
    if errors or data is None:
        raise SpecError(errors or problems)
    import hashlib

    return Spec(path, data, loaded, hashlib.sha256(raw).hexdigest())


def load_role_config(path: Path) -> dict[str, Any]:
    """A config-repository file (`kind: RoleConfig`) with defaults; raises SpecError."""
    _, loaded = _read(path)
    problems, data = check_loaded(loaded)
    if data is not None and not definition_for(data):
        problems = [Problem(str(path), 1, 1, "kind", "this is a spec, not a RoleConfig file")]
    errors = [p for p in problems if p.is_error]
    if errors or data is None:
        raise SpecError(errors or problems)
    return data


def _read(path: Path) -> tuple[bytes, Loaded]:
    try:
        with path.open("rb") as f:
            raw = f.read(MAX_BYTES + 1)  # never more than the cap, whatever the path is
    except OSError as exc:
        problem = Problem(str(path), 1, 1, "file", f"cannot read the file: {exc.strerror or exc}")
        raise SpecError([problem]) from None
    return raw, load_bytes(raw, str(path))
