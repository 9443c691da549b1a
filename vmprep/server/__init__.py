"""The configuration service: signing keys, the config repository, signed InstanceConfig
documents, the status store, the HTTP app (`vmprep serve`), static publishing
(`vmprep publish`) and the status client (`vmprep status`).

Everything here needs the `server` extra (cryptography, starlette, uvicorn); nothing outside
this package imports it, so `vmprep --help` and `vmprep validate` stay fast.
"""

from __future__ import annotations

import importlib.util

from vmprep.errors import UsageError


def require_extra(*modules: str) -> None:
    """A clear error instead of an ImportError when the `server` extra is not installed."""
    missing = [m for m in modules if importlib.util.find_spec(m) is None]
    if missing:
        raise UsageError(
            f"this command needs {', '.join(missing)}, from vmprep's `server` extra",
            hint="pip install 'vmprep[server]'",
        )
