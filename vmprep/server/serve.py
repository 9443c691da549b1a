"""`vmprep serve`: the app under uvicorn, with reload on SIGHUP and on file changes."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vmprep.errors import ExternalToolError, InputError, UsageError
from vmprep.server.guard import Limits, guarded_protocol, raise_open_file_limit
from vmprep.server.keys import load_keys
from vmprep.server.service import Service, Tokens, load_tokens
from vmprep.server.store import SqliteStore

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
    keys = load_keys(list(opts.keys))
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
    created = not opts.data_dir.exists()
    store = SqliteStore(opts.data_dir)
    try:
        service = Service(opts.configs, store, keys, tokens, attestor)
    except BaseException:
        store.close()
        if created:  # a refused start leaves nothing behind
            import shutil

            shutil.rmtree(opts.data_dir, ignore_errors=True)
        raise
    store.prune(time.time())
    return service


def build_attestor(opts: ServeOptions) -> Attestor | None:
    """The attestation verifier, or None when no anchors and no JWKS URL are configured."""
    for url in (*opts.attestation_audience, opts.attestation_gce_jwks or "https://x"):
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
    import uvicorn

    from vmprep.server.app import create_app

    logging.basicConfig(level=opts.log_level.upper(), format="%(levelname)s: %(message)s")
    files = raise_open_file_limit()
    limits = opts.limits(files[0] if files else None)
    service = build_service(opts)
    if not service.tokens.fleet:
        log.warning("no fleet token configured: any client may fetch configs and report")
    service.warn_attestation()

    @contextlib.asynccontextmanager
    async def lifespan(app: Any) -> AsyncIterator[None]:
        loop = asyncio.get_running_loop()
        hup = getattr(signal, "SIGHUP", None)  # not on Windows: the poll reloads there
        if hup is not None:
            loop.add_signal_handler(hup, lambda: loop.run_in_executor(None, service.reload))
        watch = asyncio.create_task(_watch(service, opts.poll)) if opts.poll > 0 else None
        log.info(
            "at most %d connection(s), %s per client; %gs for headers, %gs for a body%s",
            limits.max_connections,
            limits.max_per_client or "no cap",
            limits.header_timeout,
            limits.body_timeout,
            f"; open-file limit {files[0]}" if files else "",
        )
        keys = ", ".join(k.key_id for k in service.keys)
        log.info(
            "serving %d role(s) from %s, signing with %s",
            len(service.repo.roles),
            opts.configs,
            keys,
        )
        try:
            yield
        finally:
            if watch is not None:
                watch.cancel()
            if hup is not None:
                loop.remove_signal_handler(hup)

    app = create_app(service, lifespan=lifespan)
    config = uvicorn.Config(
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
        backlog=2048,
    )
    server = uvicorn.Server(config)
    try:
        server.run()
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
