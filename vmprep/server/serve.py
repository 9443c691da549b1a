"""`vmprep serve`: the app under uvicorn, with reload on SIGHUP and on file changes.

With `--workers N` (POSIX), the parent binds the listening socket, then forks N workers that
each build their own service (store connections are never shared across a fork) and accept
on that socket; the parent restarts a worker that dies and passes SIGTERM/SIGINT/SIGHUP on.
Any number of such processes, on any number of machines, may share one PostgreSQL store
(`--store postgresql://...`): everything they must agree on lives there (vmprep.server.pgstore).

SIGTERM (or SIGINT) shuts down gracefully: the listening socket closes, `/readyz` answers 503
on the connections still open, and requests in flight get `--shutdown-timeout` seconds to
finish (uvicorn's `timeout_graceful_shutdown`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import os
import signal
import socket
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vmprep.errors import ExternalToolError, InputError, UsageError
from vmprep.server.guard import Limits, guarded_protocol, raise_open_file_limit
from vmprep.server.keys import load_keys
from vmprep.server.service import Service, Tokens, load_tokens
from vmprep.server.store import SqliteStore, Store

if TYPE_CHECKING:
    from vmprep.server.attestation import Attestor

log = logging.getLogger("vmprep.server")


@dataclass(frozen=True)
class ServeOptions:
    configs: Path
    keys: tuple[Path, ...]
    data_dir: Path
    host: str = "127.0.0.1"
    port: int = 8080
    tokens: Path | None = None
    certfile: Path | None = None
    keyfile: Path | None = None
    poll: float = 2.0  # seconds between checks of the repository's files; 0: SIGHUP only
    forwarded_allow_ips: str | None = None  # trust X-Forwarded-* from these proxies
    access_log: bool = False
    log_level: str = "info"
    allow_anonymous: bool = False  # serve without a fleet token on a non-loopback address
    header_timeout: float = 10.0  # vmprep.server.guard: slow and greedy clients
    body_timeout: float = 30.0
    max_connections: int = 4096
    max_per_client: int = 256
    store: str | None = None  # a postgresql:// URL; None: SQLite in data_dir
    workers: int = 1  # processes accepting on one socket (POSIX)
    reports_only: bool = False  # collect reports, serve no configs (static hosting)
    shutdown_timeout: float = 30.0  # seconds in-flight requests get after SIGTERM
    attestation_anchors: Path | None = None  # docs/attestation.md
    attestation_audience: tuple[str, ...] = ()
    attestation_gce_jwks: str | None = None
    attestation_aws_max_age: float = 6 * 3600.0
    attestation_clock_skew: float = 300.0

    def limits(self, open_files: int | None) -> Limits:
        """The guard's limits; the connection cap leaves room under the open-file limit for
        the store, the repository's files and the listening socket."""
        cap = self.max_connections
        if open_files is not None:
            cap = max(1, min(cap, open_files - RESERVED_FDS))
        return Limits(self.header_timeout, self.body_timeout, cap, self.max_per_client)


RESERVED_FDS = 64


def _is_loopback(host: str) -> bool:
    import ipaddress

    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _check_tls(certfile: Path, keyfile: Path) -> None:
    """Load the pair once, as uvicorn will: a bad one is the user's input, not a crash."""
    import ssl

    asked: list[bool] = []

    def password() -> bytes:  # an encrypted key: leave it to uvicorn's own prompt
        asked.append(True)
        return b""

    try:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(certfile, keyfile, password=password)
    except (ssl.SSLError, OSError) as exc:
        if asked:
            return
        raise InputError(
            f"cannot use {certfile} and {keyfile} for TLS: {exc}",
            hint="--certfile takes the PEM certificate chain, --keyfile its PEM private key",
        ) from None


def build_service(opts: ServeOptions) -> Service:
    if (opts.certfile is None) != (opts.keyfile is None):
        raise UsageError("--certfile and --keyfile go together")
    if opts.certfile is not None and opts.keyfile is not None:
        _check_tls(opts.certfile, opts.keyfile)
    # A reports-only service signs nothing: it needs no signing key (and is better without).
    keys = [] if opts.reports_only and not opts.keys else load_keys(list(opts.keys))
    tokens = load_tokens(opts.tokens) if opts.tokens else Tokens()
    if not tokens.fleet and not opts.allow_anonymous and not _is_loopback(opts.host):
        # Documents carry instance secrets (domain-join credentials): an open service on a
        # reachable address would hand them to anybody who can guess a role name.
        raise UsageError(
            f"no fleet token configured, and --host {opts.host} is reachable from other machines",
            hint="give --tokens FILE with a `fleet <sha256>` line, or --allow-anonymous if "
            "every client that can reach this address may read every config",
        )
    attestor = build_attestor(opts)
    created = opts.store is None and not opts.data_dir.exists()
    store = open_store(opts)
    try:
        service = Service(
            opts.configs,
            store,
            keys,
            tokens,
            reports_only=opts.reports_only,
            shared=store.remote or opts.workers > 1,
            attestor=attestor,
        )
        store.prune(time.time())
    except BaseException:
        store.close()
        if created:  # a refused start leaves nothing behind
            import shutil

            shutil.rmtree(opts.data_dir, ignore_errors=True)
        raise
    return service


STORE_SCHEMES = ("postgresql://", "postgres://")


def open_store(opts: ServeOptions) -> Store:
    """SQLite in --data-dir, or the PostgreSQL database --store names (checked: reachable,
    and at this vmprep's schema version)."""
    if opts.store is None:
        return SqliteStore(opts.data_dir)
    if not opts.store.startswith(STORE_SCHEMES):
        raise UsageError(
            "--store takes a postgresql:// URL",
            hint="e.g. --store postgresql://vmprep@db.example/vmprep (keep the password in "
            "~/.pgpass or PGPASSWORD, not in the URL); without --store, serve uses SQLite in "
            "--data-dir",
        )
    from vmprep.server import require_extra

    require_extra("psycopg", "psycopg_pool")
    from vmprep.server.pgstore import PostgresStore

    return PostgresStore(opts.store)


def build_attestor(opts: ServeOptions) -> Attestor | None:
    """The attestation verifier, or None when no anchors and no JWKS URL are configured."""
    jwks_url = () if opts.attestation_gce_jwks is None else (opts.attestation_gce_jwks,)
    for url in (*opts.attestation_audience, *jwks_url):
        _check_url(url)
    if opts.attestation_anchors is None and opts.attestation_gce_jwks is None:
        return None
    from vmprep.server.attestation import Attestor
    from vmprep.server.attestation.anchors import Anchors, load_anchors
    from vmprep.server.attestation.jwks import JwksCache

    anchors = (
        Anchors() if opts.attestation_anchors is None else load_anchors(opts.attestation_anchors)
    )
    jwks = JwksCache(opts.attestation_gce_jwks) if opts.attestation_gce_jwks else None
    return Attestor(
        anchors,
        tuple(a.rstrip("/") for a in opts.attestation_audience),
        jwks,
        opts.attestation_clock_skew,
        opts.attestation_aws_max_age,
    )


def _check_url(url: str) -> None:
    """An audience or JWKS URL: https (http only to a loopback host: tests)."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    if parts.scheme == "https" and parts.hostname:
        return
    if parts.scheme == "http" and parts.hostname and _is_loopback(parts.hostname):
        return
    raise UsageError(
        f"{url!r} is not an https:// URL",
        hint="--attestation-audience and --attestation-gce-jwks take https URLs",
    )


async def _watch(service: Service, every: float) -> None:
    while True:
        await asyncio.sleep(every)
        try:
            if await asyncio.to_thread(service.changed):
                await asyncio.to_thread(service.reload)
        except Exception:  # a watch that dies silently would be worse than a log line
            log.exception("checking the config repository failed")


def serve(opts: ServeOptions) -> None:
    logging.basicConfig(level=opts.log_level.upper(), format="%(levelname)s: %(message)s")
    files = raise_open_file_limit()
    if opts.workers > 1 and not hasattr(os, "fork"):
        raise UsageError("--workers above 1 needs a POSIX system (it forks)")
    service = build_service(opts)  # every check before the first worker starts
    if not service.tokens.fleet:
        log.warning("no fleet token configured: any client may fetch configs and report")
    service.warn_attestation()
    if opts.workers == 1:
        _run(opts, service, files, None)
        return
    service.store.close()  # no connection (or pool thread) may cross a fork
    sock = _bind(opts)
    try:
        _supervise(opts, files, sock)
    finally:
        sock.close()


def _config(opts: ServeOptions, app: Any, limits: Limits) -> Any:
    import uvicorn

    return uvicorn.Config(
        app,
        host=opts.host,
        port=opts.port,
        ssl_certfile=str(opts.certfile) if opts.certfile else None,
        ssl_keyfile=str(opts.keyfile) if opts.keyfile else None,
        proxy_headers=opts.forwarded_allow_ips is not None,
        forwarded_allow_ips=opts.forwarded_allow_ips,
        access_log=opts.access_log,
        log_level=opts.log_level,
        server_header=False,
        http=guarded_protocol(limits),
        timeout_keep_alive=5,
        timeout_graceful_shutdown=math.ceil(opts.shutdown_timeout),
        backlog=2048,
    )


def _bind(opts: ServeOptions) -> socket.socket:
    """The listening socket the workers share, bound as uvicorn binds it."""
    config = _config(opts, None, opts.limits(None))
    try:
        sock: socket.socket = config.bind_socket()
    except SystemExit:  # uvicorn logged why (e.g. the port is taken)
        raise ExternalToolError(
            f"could not serve on {opts.host}:{opts.port} (the log above says why)",
            hint="is something else listening there? pick another --port",
        ) from None
    sock.listen(2048)
    return sock


def _run(
    opts: ServeOptions,
    service: Service,
    files: tuple[int, int] | None,
    sock: socket.socket | None,
    parent: int | None = None,
) -> None:
    """One uvicorn server for `service`, on `sock` (a worker) or on its own socket."""
    import uvicorn

    from vmprep.server.app import create_app

    limits = opts.limits(files[0] if files else None)

    @contextlib.asynccontextmanager
    async def lifespan(app: Any) -> AsyncIterator[None]:
        loop = asyncio.get_running_loop()
        hup = getattr(signal, "SIGHUP", None)  # not on Windows: the poll reloads there
        if hup is not None:
            loop.add_signal_handler(hup, lambda: loop.run_in_executor(None, service.reload))
        watch = asyncio.create_task(_watch(service, opts.poll)) if opts.poll > 0 else None
        orphan = asyncio.create_task(_orphaned(server, parent)) if parent else None
        log.info(
            "at most %d connection(s), %s per client; %gs for headers, %gs for a body%s",
            limits.max_connections,
            limits.max_per_client or "no cap",
            limits.header_timeout,
            limits.body_timeout,
            f"; open-file limit {files[0]}" if files else "",
        )
        if opts.reports_only:
            log.info("collecting reports only: config fetches are refused (404 reports-only)")
        else:
            log.info(
                "serving %d role(s) from %s, signing with %s",
                len(service.repo.roles),
                opts.configs,
                ", ".join(k.key_id for k in service.keys),
            )
        try:
            yield
        finally:
            for task in (watch, orphan):
                if task is not None:
                    task.cancel()
            if hup is not None:
                loop.remove_signal_handler(hup)

    class Server(uvicorn.Server):
        def handle_exit(self, sig: int, frame: Any) -> None:
            service.draining = True  # /readyz: 503 on the connections still open
            super().handle_exit(sig, frame)

    app = create_app(service, lifespan=lifespan)
    server = Server(_config(opts, app, limits))
    try:
        server.run(sockets=[sock] if sock is not None else None)
    except SystemExit as exc:  # uvicorn exits on a failed start (e.g. the port is taken)
        if exc.code not in (0, None):
            server.started = False
    finally:
        service.store.close()
    if not server.started:
        raise ExternalToolError(
            f"could not serve on {opts.host}:{opts.port} (the log above says why)",
            hint="is something else listening there? pick another --port",
        )


async def _orphaned(server: Any, parent: int) -> None:
    """A worker whose parent is gone (killed) shuts down rather than serve on unsupervised."""
    while os.getppid() == parent:
        await asyncio.sleep(1.0)
    log.warning("the supervising process is gone; shutting down")
    server.should_exit = True


def _supervise(opts: ServeOptions, files: tuple[int, int] | None, sock: socket.socket) -> None:
    """Fork `opts.workers` workers on `sock`; restart one that dies; pass signals on."""
    workers: dict[int, int] = {}  # pid -> worker number
    stopping = False
    me = os.getpid()

    def spawn(number: int) -> None:
        pid = os.fork()
        if pid == 0:  # the worker
            code = 0
            try:
                os.setpgid(0, 0)  # a terminal's Ctrl-C reaches the parent only, once
                for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
                    signal.signal(sig, signal.SIG_DFL)
                _run(opts, build_service(opts), files, sock, parent=me)
            except BaseException as exc:  # noqa: BLE001 # a worker never returns into the parent's code
                code = 1
                log.error("worker %d failed: %s", number, exc)
            finally:
                logging.shutdown()
                os._exit(code)
        workers[pid] = number

    def forward(sig: int, frame: Any) -> None:
        nonlocal stopping
        if sig != signal.SIGHUP:
            stopping = True
        for pid in workers:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM if sig == signal.SIGINT else sig)

    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, forward)
    log.info("%d workers on %s:%d", opts.workers, *sock.getsockname()[:2])
    for number in range(opts.workers):
        spawn(number)
    while workers:
        try:
            pid, status = os.wait()
        except ChildProcessError:
            break
        number = workers.pop(pid, -1)
        if number < 0 or stopping:
            continue
        log.error(
            "worker %d (pid %d) exited with status %d; starting another",
            number,
            pid,
            os.waitstatus_to_exitcode(status),
        )
        time.sleep(1.0)  # a worker failing at once must not spin
        if not stopping:
            spawn(number)
    sys.stdout.flush()
