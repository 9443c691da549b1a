"""Render a checked spec into the files of a Windows system-drive overlay.

`render(spec) -> RenderResult` builds unattend.xml, SetupComplete.cmd, agent.pyz, agent.json
and the manifest in memory; `write_tree(result, out)` writes them atomically. See
docs/internals.md (the API) and docs/render.md (what each file holds).
"""

from __future__ import annotations

from vmprep.render.build import RenderResult, render
from vmprep.render.errors import RenderError
from vmprep.render.setupcomplete import CHAINED_SETUPCOMPLETE
from vmprep.render.tree import write_tree

__all__ = ["CHAINED_SETUPCOMPLETE", "RenderError", "RenderResult", "render", "write_tree"]
