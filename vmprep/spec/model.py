"""The loaded, checked spec with the schema's defaults applied."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from vmprep.errors import InputError
from vmprep.problems import Problem
from vmprep.spec.load import MAX_BYTES, JsonPath, Loaded, load_bytes, load_file

if TYPE_CHECKING:  # the section types cost nothing at run time (generated, tools/)
    from vmprep.spec.checks import Kind
    from vmprep.spec.types import AgentSection, ImageSection, SetupSection, SysprepSection


class SpecError(InputError):
    """A spec with errors; `problems` holds all of them, sorted."""

    def __init__(self, problems: list[Problem]) -> None:
        # Every problem, each with its hint, as `vmprep validate` prints them (docs/render.md).
        lines = [f"{p}\n  hint: {p.hint}" if p.hint else str(p) for p in problems]
        super().__init__("\n".join(lines))
        self.problems = problems


class Spec(NamedTuple):
    """A valid spec. `data` is the document with every schema default filled in.

    A NamedTuple, not a dataclass: it is on `vmprep validate`'s start-up path."""

    path: Path
    data: dict[str, Any]
    loaded: Loaded
    sha256: str

    def position(self, path: JsonPath) -> tuple[int, int]:
        return self.loaded.position(path)

    @property
    def image(self) -> ImageSection:
        return self.data["image"]  # type: ignore[no-any-return]

    @property
    def setup(self) -> SetupSection:
        return self.data["setup"]  # type: ignore[no-any-return]

    @property
    def sysprep(self) -> SysprepSection:
        return self.data["sysprep"]  # type: ignore[no-any-return]

    @property
    def agent(self) -> AgentSection:
        return self.data["agent"]  # type: ignore[no-any-return]


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


def apply_defaults(data: dict[str, Any], definition: str | None = None) -> dict[str, Any]:
    """A deep copy of `data` with the schema's `default`s filled in where a key is absent."""
    result: dict[str, Any] = _copy(data)
    _fill(result, _plan(definition))
    return result


# A plan says, for one schema node, which properties have a default and where to recurse:
# ([(key, has_default, default, plan of the property)], plan of the list items).
_Plan = tuple[list[tuple[str, bool, Any, "_Plan | None"]], "_Plan | None"]


@cache
def _plan(definition: str | None) -> _Plan:
    from vmprep.spec.schema import runtime_schema

    return _compile_plan(runtime_schema(definition)) or ([], None)


def _compile_plan(node: Any) -> _Plan | None:
    if not isinstance(node, dict):
        return None
    props = []
    for key, sub in node.get("properties", {}).items():
        inner = _compile_plan(sub)
        if isinstance(sub, dict) and ("default" in sub or inner):
            props.append((key, "default" in sub, sub.get("default"), inner))
    items = _compile_plan(node["items"]) if isinstance(node.get("items"), dict) else None
    return (props, items) if props or items else None


def _fill(value: Any, plan: _Plan) -> None:
    props, items = plan
    if isinstance(value, dict):
        for key, has_default, default, inner in props:
            if key not in value and has_default:
                value[key] = _copy(default)
            if inner is not None and key in value:
                _fill(value[key], inner)
    elif isinstance(value, list) and items is not None:
        for item in value:
            _fill(item, items)


def _copy(value: Any) -> Any:
    """A deep copy of JSON-like data (much faster than copy.deepcopy)."""
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy(v) for v in value]
    return value
