"""The spec value: a loaded, checked spec with the schema's defaults applied (`Spec`), and the
error that carries every problem of one that is not valid (`SpecError`). Loading and checking
is `vmprep.spec.pipeline`; filling in defaults is `vmprep.spec.defaults`."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from vmprep.errors import InputError
from vmprep.problems import Problem
from vmprep.spec.load import JsonPath, Loaded

if TYPE_CHECKING:  # the section types cost nothing at run time (generated, tools/)
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
