"""The fleet dashboard (issue 16): a read-only page for operators and the JSON behind it.

The page (`/dashboard`) is static: it holds no data, so it is served without a token; the
operator types the admin token into it, and its script reads `/v1/fleet` and
`/v1/instances/{id}/timeline` with that token, like `vmprep status` does. No asset comes from
outside, and a Content-Security-Policy allows only this server's own script and style.
"""

from __future__ import annotations

from importlib import resources
from typing import TYPE_CHECKING

from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from vmprep.server.fleet import STATES, parse_cursor

if TYPE_CHECKING:
    from vmprep.server.service import Service

_TYPES = {
    "dashboard.html": "text/html; charset=utf-8",
    "dashboard.js": "text/javascript; charset=utf-8",
    "dashboard.css": "text/css; charset=utf-8",
}
_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}
_FILES: dict[str, bytes] = {}


def _file(name: str) -> bytes:
    if name not in _FILES:
        _FILES[name] = resources.files("vmprep.server").joinpath("web", name).read_bytes()
    return _FILES[name]


async def page(request: Request) -> Response:
    name = request.path_params.get("name", "dashboard.html")
    if name not in _TYPES:
        raise HTTPException(404, "Not Found")
    return Response(_file(name), media_type=_TYPES[name], headers=_HEADERS)


def _denied(request: Request) -> Response | None:
    from vmprep.server.app import _denied as denied

    return denied(request, admin=True)


def _service(request: Request) -> Service:
    service: Service = request.app.state.service
    return service


async def fleet(request: Request) -> Response:
    denied = _denied(request)
    if denied is not None:
        return denied
    q = request.query_params
    state = q.get("state") or None
    if state is not None and state not in STATES:
        raise HTTPException(400, f"state must be one of {', '.join(STATES)}")
    try:
        limit = int(q.get("limit", "50"))
    except ValueError:
        raise HTTPException(400, "limit must be an integer") from None
    after = parse_cursor(q.get("after"))
    if q.get("after") and after is None:
        raise HTTPException(400, "after must be a cursor from a previous page's `next`")
    view = await run_in_threadpool(
        _service(request).store.fleet,
        role=q.get("role") or None,
        state=state,
        prefix=q.get("q") or None,
        after=after,
        limit=limit,
    )
    return JSONResponse(view)


async def timeline(request: Request) -> Response:
    from vmprep.server.app import _name

    denied = _denied(request)
    if denied is not None:
        return denied
    instance_id = _name(request.path_params["instance_id"], "instance id")
    view = await run_in_threadpool(_service(request).store.timeline, instance_id)
    if not view["timeline"] and not view["served"]:
        raise HTTPException(404, f"nothing known of instance {instance_id!r}")
    return JSONResponse(view)


ROUTES = [
    Route("/dashboard", page, methods=["GET"]),
    Route("/dashboard/{name}", page, methods=["GET"]),
    Route("/v1/fleet", fleet, methods=["GET"]),
    Route("/v1/instances/{instance_id}/timeline", timeline, methods=["GET"]),
]
