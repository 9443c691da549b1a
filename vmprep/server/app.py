"""The HTTP API (docs/protocol.md; docs/openapi.json): handlers parse, call the core, answer."""

from __future__ import annotations

import asyncio
import concurrent.futures
import ipaddress
import json
import logging
import re
import secrets
import time
from typing import TYPE_CHECKING, Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from vmprep.protocol.timestamps import format_rfc3339
from vmprep.server.documents import ROLE_TARGET, MissingSecrets, Signed
from vmprep.server.fleet import Served
from vmprep.server.ratelog import RateLimitedWarning
from vmprep.server.reports import MAX_REPORT_BYTES, ReportError, parse_report
from vmprep.server.store import NewReport, StoreUnavailable

if TYPE_CHECKING:
    from vmprep.server.attestation import AttestationError
    from vmprep.server.repo import Role
    from vmprep.server.service import Service

log = logging.getLogger("vmprep.server")

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")  # docs/protocol.md "Names and keys"
SECRET_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")  # the schema's secret names
MAC = re.compile(r"^[0-9a-fA-F]{2}([-:][0-9a-fA-F]{2}){5}$")
_JSON = "application/json"
UNKNOWN_ROLE_HEADER = "Vmprep-Error"  # value `unknown-role`: docs/protocol.md "No such role"


disconnects = RateLimitedWarning("a client disconnected before its report was read (from %s)")
unavailable = RateLimitedWarning("the store is unavailable, answering 503: %s", every=10.0)
RETRY_AFTER = 5  # seconds, in 503 answers while the store is unavailable
REPORTS_ONLY = "reports-only"  # Vmprep-Error of a config fetch from a `--reports-only` server


_executors: list[concurrent.futures.ThreadPoolExecutor] = []
STORE_THREADS = 8  # as many as the PostgreSQL store's pool has connections


def _store_threads() -> concurrent.futures.ThreadPoolExecutor:
    """Threads for fetches' store work, made in the process that serves (after a fork)."""
    if not _executors:
        _executors.append(
            concurrent.futures.ThreadPoolExecutor(STORE_THREADS, thread_name_prefix="vmprep-store")
        )
    return _executors[0]


refusals = RateLimitedWarning("attestation refused: %s", every=0.2)
NONCE_TTL = 300  # seconds: docs/protocol.md "Attestation"
NONCES_PER_INSTANCE = 5
MAX_CHALLENGE_BYTES = 1024


def error(status: int, message: str, **headers: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=headers or None)


def _service(request: Request) -> Service:
    service: Service = request.app.state.service
    return service


def _bearer(request: Request) -> str | None:
    value = request.headers.get("authorization", "")
    scheme, _, token = value.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def _denied(request: Request, *, admin: bool) -> JSONResponse | None:
    """None when allowed, else the 401/403 answer."""
    tokens = _service(request).tokens
    if not admin and not tokens.fleet:
        return None
    if admin and not tokens.admin:
        return error(403, "no admin token is configured on this server")
    token = _bearer(request)
    if token is None:
        return error(401, "a bearer token is required", **{"WWW-Authenticate": "Bearer"})
    if tokens.is_admin(token) if admin else tokens.is_fleet(token) or tokens.is_admin(token):
        return None
    return error(403, "this token is not accepted here")


def _name(value: str, what: str) -> str:
    if value.startswith("_") and NAME.match(value[1:]):
        raise HTTPException(400, f"{what}s starting with '_' are reserved")
    if not NAME.match(value) or value.endswith(".sig"):
        raise HTTPException(400, f"invalid {what} {value!r}")
    return value


def _secure(request: Request) -> bool:
    """TLS (direct, or via a trusted proxy's X-Forwarded-Proto) or a loopback client."""
    if request.url.scheme == "https":
        return True
    host = request.client.host if request.client else ""
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _wanted_secrets(request: Request) -> frozenset[str]:
    """`Vmprep-Secrets`: the names the agent's baked steps need (docs/protocol.md)."""
    value = request.headers.get("vmprep-secrets", "")
    names = frozenset(n.strip() for n in value.split(",") if n.strip())
    bad = sorted(n for n in names if not SECRET_NAME.match(n))
    if bad:
        raise HTTPException(400, f"Vmprep-Secrets: invalid secret name {bad[0]!r}")
    return names


async def get_config(request: Request) -> Response:
    denied = _denied(request, admin=False)
    if denied is not None:
        return denied
    if _service(request).reports_only:
        return error(
            404,
            "this server only collects reports: fetch configs from where they are published",
            **{UNKNOWN_ROLE_HEADER: REPORTS_ONLY},
        )
    role = _name(request.path_params["role"], "role")
    token = _bearer(request)
    if (
        token is not None
        and _service(request).tokens.fleet
        and not _service(request).tokens.may_fetch(token, role)
    ):
        return error(403, f"this token may not fetch configs for role {role!r}")
    instance_id = request.path_params["instance_id"]
    if instance_id != ROLE_TARGET:
        _name(instance_id, "instance id")
    last = request.headers.get("vmprep-last-serial")
    if last is not None and not re.fullmatch(r"[0-9]{1,16}", last.strip()):
        raise HTTPException(400, "Vmprep-Last-Serial must be an integer")
    service = _service(request)
    role_config = service.issuer.repo.roles.get(role)
    if role_config is not None and role_config.attestation != "off":
        refused = await _attest(request, role_config, instance_id)
        if refused is not None:
            return refused
    mac = request.query_params.get("mac")
    mac = mac.replace(":", "-").lower() if mac and MAC.match(mac) else None
    wanted = _wanted_secrets(request)
    args = (service, role, instance_id, mac, request.query_params.get("computer_name"), wanted)
    # A remote store (PostgreSQL) is called from a worker thread: a slow or unreachable
    # database must not stall the event loop, and with it every other request. A plain
    # executor, not Starlette's threadpool: about half the CPU per fetch (docs/server.md).
    if service.store.remote:
        loop = asyncio.get_running_loop()
        answer = await loop.run_in_executor(_store_threads(), _document, *args, last)
    else:
        answer = _document(*args, last)
    if isinstance(answer, Response):
        return answer
    signed = answer
    if signed.has_secrets and not _secure(request):
        return error(403, "this document holds secrets: fetch it over TLS")
    if instance_id != ROLE_TARGET:  # the dashboard's "documents served"
        service.writer.served(Served(instance_id, role, signed.serial, time.time()))
    return Response(
        signed.body,
        media_type=_JSON,
        headers={"Vmprep-Signature": signed.signature, "Cache-Control": "no-store"},
    )


def _document(
    service: Service,
    role: str,
    instance_id: str,
    mac: str | None,
    computer_name: str | None,
    wanted: frozenset[str],
    last: str | None,
) -> Signed | Response:
    """The signed document to serve, or the answer instead of it (304, 404, 409)."""
    issuer = service.issuer
    role_config = issuer.repo.roles.get(role)
    if not computer_name and role_config and any(o.kind == "name" for o in role_config.overrides):
        computer_name = service.store.computer_name(instance_id)  # as last reported
    try:
        content = issuer.content(role, instance_id, mac, computer_name, wanted)
    except MissingSecrets as exc:
        return error(409, str(exc))
    if content is None:
        # Not 204: an instance must never finish "done" because a role file was renamed,
        # mistyped or briefly missing (docs/protocol.md "No such role"). The agent retries this
        # like a transient failure until its deadline, then follows on_unreachable.
        return error(
            404, f"this service knows no role {role!r}", **{UNKNOWN_ROLE_HEADER: "unknown-role"}
        )
    signed = issuer.signed(content)
    if last is not None and issuer.is_current(int(last), content, signed):
        return Response(status_code=304)
    return signed


def attestation_error(exc: AttestationError) -> JSONResponse:
    """docs/protocol.md "Attestation": the code in `Vmprep-Error` and the body's `error`."""
    return JSONResponse(
        {"error": exc.code, "message": exc.message},
        status_code=exc.status,
        headers={UNKNOWN_ROLE_HEADER: exc.code, "Cache-Control": "no-store"},
    )


async def _attest(request: Request, role: Role, instance_id: str) -> Response | None:
    """None when the role's attestation mode lets the request through, else the refusal.
    Nothing of the document has been built yet: a refusal carries no secret."""
    from vmprep.server.attestation import AttestationError
    from vmprep.server.attestation.admit import admit

    service = _service(request)
    header = request.headers.get("vmprep-attestation")
    try:
        # Signature checks and the store: off the event loop.
        await run_in_threadpool(
            admit,
            role,
            instance_id,
            header,
            service.attestor,
            service.store,
            time.time(),
            role_wide=instance_id == ROLE_TARGET,
        )
    except AttestationError as exc:
        client = request.client.host if request.client else "?"
        refusals.warn(f"{exc.code} for {role.name}/{instance_id} from {client}: {exc.message}")
        return attestation_error(exc)
    return None


async def post_challenge(request: Request) -> Response:
    """A single-use nonce for an Azure attested document (docs/protocol.md "Attestation")."""
    denied = _denied(request, admin=False)
    if denied is not None:
        return denied
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_CHALLENGE_BYTES:
            raise HTTPException(413, f"a challenge request is at most {MAX_CHALLENGE_BYTES} bytes")
    try:
        instance_id = json.loads(body).get("instance_id")
    except (ValueError, UnicodeDecodeError, AttributeError):
        raise HTTPException(400, 'expected a JSON body {"instance_id": "..."}') from None
    if not isinstance(instance_id, str):
        raise HTTPException(400, 'expected a JSON body {"instance_id": "..."}')
    _name(instance_id, "instance id")
    store, now = _service(request).store, time.time()
    for _ in range(8):  # "taken": an outstanding nonce drawn again; draw another
        nonce = f"{secrets.randbelow(10**10):010d}"
        result = await run_in_threadpool(
            store.add_nonce, nonce, instance_id, now + NONCE_TTL, now, NONCES_PER_INSTANCE
        )
        if result == "full":
            raise HTTPException(
                429,
                f"instance {instance_id!r} holds {NONCES_PER_INSTANCE} unused nonces already",
                headers={"Retry-After": "60"},
            )
        if result == "stored":
            return JSONResponse(
                {"nonce": nonce, "expires_at": format_rfc3339(int(now + NONCE_TTL))},
                headers={"Cache-Control": "no-store"},
            )
    raise RuntimeError("no free nonce in 8 draws")  # 10**10 values: not by chance


async def post_report(request: Request) -> Response:
    denied = _denied(request, admin=False)
    if denied is not None:
        return denied
    instance_id = _name(request.path_params["instance_id"], "instance id")
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype != _JSON:
        raise HTTPException(400, "Content-Type must be application/json")
    length = request.headers.get("content-length")
    if length is None or not length.isdigit():
        raise HTTPException(400, "Content-Length is required")
    if int(length) > MAX_REPORT_BYTES:
        raise HTTPException(413, f"a report is at most {MAX_REPORT_BYTES} bytes")
    chunks, size = [], 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > MAX_REPORT_BYTES:
                raise HTTPException(413, f"a report is at most {MAX_REPORT_BYTES} bytes")
            chunks.append(chunk)
    except ClientDisconnect:
        # Nobody is left to answer: one rate-limited warning, not an ERROR with a traceback
        # per client (a flood of them would bury everything else in the log).
        disconnects.warn(request.client.host if request.client else "?")
        return Response(status_code=400)
    body = b"".join(chunks)
    try:
        report, sent = parse_report(body, instance_id)
    except ReportError as exc:
        raise HTTPException(400, str(exc)) from None
    stored = await _service(request).writer.add(NewReport(report, body, sent, time.time()))
    return JSONResponse({"report_id": report["report_id"], "stored": stored}, status_code=202)


async def list_instances(request: Request) -> Response:
    denied = _denied(request, admin=True)
    if denied is not None:
        return denied
    return JSONResponse({"instances": await run_in_threadpool(_service(request).store.instances)})


async def get_instance(request: Request) -> Response:
    denied = _denied(request, admin=True)
    if denied is not None:
        return denied
    instance_id = _name(request.path_params["instance_id"], "instance id")
    store = _service(request).store
    found = await run_in_threadpool(store.instance, instance_id)
    if found is None:
        raise HTTPException(404, f"no report from instance {instance_id!r}")
    attested = await run_in_threadpool(store.attestation, instance_id)
    found["attestation"] = None if attested is None else attested.to_json()
    return JSONResponse(found)


async def healthz(request: Request) -> Response:
    """Liveness: the process answers (for a load balancer or a service manager)."""
    return JSONResponse({"status": "ok", "roles": len(_service(request).repo.roles)})


async def readyz(request: Request) -> Response:
    """Readiness: the store answers and a config repository is loaded; 503 while not, and
    from the moment a graceful shutdown starts (so a load balancer stops sending here)."""
    service = _service(request)
    if service.draining:
        return _unready("shutting down")
    try:
        await run_in_threadpool(service.store.ping)
    except StoreUnavailable as exc:
        unavailable.warn(str(exc))
        return _unready("the store is unavailable")
    return JSONResponse(
        {"status": "ready", "roles": len(service.repo.roles), "reports_only": service.reports_only}
    )


def _unready(why: str) -> Response:
    return JSONResponse(
        {"status": "unavailable", "error": why},
        status_code=503,
        headers={"Retry-After": str(RETRY_AFTER), "Cache-Control": "no-store"},
    )


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    message = (
        exc.detail
        if exc.status_code not in (404, 405) or exc.detail != _PHRASES.get(exc.status_code)
        else _PHRASES[exc.status_code].lower()
    )
    return error(exc.status_code, message, **(exc.headers or {}))


async def _store_unavailable(request: Request, exc: Exception) -> Response:
    """The database is down or restarting: agents retry a 503 after Retry-After
    (vmprep/agent/retry.py); the log says so once per interval, not once per request."""
    unavailable.warn(str(exc))
    return error(
        503,
        "the status store is unavailable; try again later",
        **{"Retry-After": str(RETRY_AFTER), UNKNOWN_ROLE_HEADER: "store-unavailable"},
    )


async def _internal_error(request: Request, exc: Exception) -> Response:
    """A bug or a failing store: still a JSON error (docs/protocol.md), and no detail leaked.

    Starlette logs the exception and re-raises it after sending this answer."""
    return error(500, "internal error; see the server's log")


_PHRASES = {404: "Not Found", 405: "Method Not Allowed"}

ROUTES = [
    Route("/v1/config/{role}/{instance_id}", get_config, methods=["GET"]),
    Route("/v1/report/{instance_id}", post_report, methods=["POST"]),
    Route("/v1/attestation/challenge", post_challenge, methods=["POST"]),
    Route("/v1/instances", list_instances, methods=["GET"]),
    Route("/v1/instances/{instance_id}", get_instance, methods=["GET"]),
    Route("/healthz", healthz, methods=["GET"]),
    Route("/readyz", readyz, methods=["GET"]),
]


def _routes() -> list[Route]:
    from vmprep.server.dashboard import ROUTES as DASHBOARD

    return [*ROUTES, *DASHBOARD]


def create_app(service: Service, **options: Any) -> Starlette:
    handlers = {
        HTTPException: _http_error,
        StoreUnavailable: _store_unavailable,
        Exception: _internal_error,
    }
    app = Starlette(routes=_routes(), exception_handlers=handlers, **options)
    app.state.service = service
    return app
