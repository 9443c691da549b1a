"""The customization spec: loading with positions, the JSON Schema, semantic checks, the model.

Modules: `model` (the `Spec` value), `pipeline` (load and check), `defaults` (the schema's
defaults), `checks` and `rules_*` (semantic checks), `types` (TypedDicts, type checking only).

Public API (what render, sysprep and the server use):

- `load_spec(path) -> Spec`: load, validate and apply defaults; raises `SpecError` carrying
  every problem when the spec has errors.
- `check_file(path) -> list[Problem]`: every problem of one file (what `validate` prints); a
  file with top-level `kind: RoleConfig` is checked as a config-repository file.
- `load_role_config(path) -> dict`: a config-repository file with defaults; raises `SpecError`.
"""

from __future__ import annotations

from vmprep.spec.model import Spec, SpecError
from vmprep.spec.pipeline import check_file, definition_for, load_role_config, load_spec

__all__ = ["Spec", "SpecError", "check_file", "definition_for", "load_role_config", "load_spec"]
