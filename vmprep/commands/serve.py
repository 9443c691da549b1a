from __future__ import annotations

from pathlib import Path

import click

P = click.Path(path_type=Path)
D = click.Path(exists=True, file_okay=False, path_type=Path)
F = click.Path(exists=True, dir_okay=False, path_type=Path)


# Shared with `publish`: both read a config repository and sign with one or more keys.
configs_option = click.option(
    "--configs", type=D, required=True, help="The config repository directory."
)
keys_option = click.option(
    "--key",
    "keys",
    type=F,
    multiple=True,
    required=True,
    help="Signing key (PEM); repeat during a rotation.",
)


@click.command(
    epilog="""\b
Examples:
  vmprep serve --configs configs --key fleet.pem
  vmprep serve --configs configs --key fleet.pem --tokens tokens.txt --host 0.0.0.0 --port 8443 --certfile cert.pem --keyfile key.pem
  vmprep serve --configs configs --key fleet.pem --store postgresql://vmprep@db/vmprep --workers 4"""
)
@configs_option
@click.option(
    "--key",
    "keys",
    type=F,
    multiple=True,
    help="Signing key (PEM); repeat during a rotation. Required unless --reports-only.",
)
@click.option(
    "--data-dir",
    type=P,
    default=Path("vmprep-data"),
    show_default=True,
    help="Where the status store lives.",
)
@click.option("--tokens", type=F, help="Tokens file: `fleet <sha256>` / `admin <sha256>` lines.")
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="Address to listen on (not loopback: needs --tokens or --allow-anonymous).",
)
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=8080,
    show_default=True,
    help="Port to listen on (0: any free port).",
)
@click.option("--certfile", type=F, help="TLS certificate chain (PEM).")
@click.option("--keyfile", type=F, help="TLS private key (PEM).")
@click.option(
    "--poll",
    type=click.FloatRange(min=0),
    default=2.0,
    show_default=True,
    help="Seconds between checks for repository changes (0: only on SIGHUP).",
)
@click.option(
    "--forwarded-allow-ips", help="Trust X-Forwarded-For/Proto from these proxy addresses."
)
@click.option(
    "--access-log/--no-access-log",
    default=False,
    show_default=True,
    help="Log every request (uvicorn's access log).",
)
@click.option(
    "--allow-anonymous",
    is_flag=True,
    help="Serve without a fleet token on a non-loopback address (anyone reaching it reads "
    "every config).",
)
@click.option(
    "--header-timeout",
    type=click.FloatRange(min=0.1),
    default=10.0,
    show_default=True,
    help="Seconds a client has to send a request's headers (then 408 and closed).",
)
@click.option(
    "--body-timeout",
    type=click.FloatRange(min=0.1),
    default=30.0,
    show_default=True,
    help="Seconds a client has to send a request's body after its headers (then closed).",
)
@click.option(
    "--max-connections",
    type=click.IntRange(min=1),
    default=4096,
    show_default=True,
    help="Open connections in all; past it a new one gets a fast 503 (capped by the "
    "open-file limit).",
)
@click.option(
    "--max-connections-per-client",
    "max_per_client",
    type=click.IntRange(min=0),
    default=256,
    show_default=True,
    help="Open connections from one address (0: no cap, e.g. a fleet behind one NAT).",
)
@click.option(
    "--store",
    metavar="URL",
    help="A postgresql:// URL: keep serials, reports and instance state in PostgreSQL, "
    "shared by every replica (default: SQLite in --data-dir). Run `vmprep db upgrade` first.",
)
@click.option(
    "--workers",
    type=click.IntRange(1, 256),
    default=1,
    show_default=True,
    help="Worker processes accepting on the one port (POSIX).",
)
@click.option(
    "--reports-only",
    is_flag=True,
    help="Collect reports only: config fetches get 404 (configs published elsewhere).",
)
@click.option(
    "--shutdown-timeout",
    type=click.FloatRange(min=0),
    default=30.0,
    show_default=True,
    help="Seconds requests in flight get to finish after SIGTERM.",
)
@click.option(
    "--attestation-anchors",
    type=D,
    help="Trust anchors for cloud attestation: azure/, aws/, gce/ subdirectories of PEM "
    "files (docs/attestation.md).",
)
@click.option(
    "--attestation-audience",
    multiple=True,
    help="This service's base URL as agents have it (no trailing slash): the audience a "
    "GCE identity token must name. Repeatable.",
)
@click.option(
    "--attestation-gce-jwks",
    help="Also trust Google's signing keys from this JWKS URL, fetched and cached (e.g. "
    "https://www.googleapis.com/oauth2/v3/certs).",
)
@click.option(
    "--attestation-aws-max-age",
    type=click.FloatRange(min=0),
    default=6 * 3600.0,
    show_default=True,
    help="Seconds after an AWS instance's pendingTime that its identity document is "
    "accepted (0: no bound).",
)
@click.option(
    "--attestation-clock-skew",
    type=click.FloatRange(min=0, max=3600),
    default=300.0,
    show_default=True,
    help="Seconds of clock difference allowed when checking attestation validity windows.",
)
def serve(
    configs: Path,
    keys: tuple[Path, ...],
    data_dir: Path,
    tokens: Path | None,
    host: str,
    port: int,
    certfile: Path | None,
    keyfile: Path | None,
    poll: float,
    forwarded_allow_ips: str | None,
    access_log: bool,
    allow_anonymous: bool,
    header_timeout: float,
    body_timeout: float,
    max_connections: int,
    max_per_client: int,
    store: str | None,
    workers: int,
    reports_only: bool,
    shutdown_timeout: float,
    attestation_anchors: Path | None,
    attestation_audience: tuple[str, ...],
    attestation_gce_jwks: str | None,
    attestation_aws_max_age: float,
    attestation_clock_skew: float,
) -> None:
    """Serve signed instance configs and collect status reports (needs the `server` extra)."""
    from vmprep.server import require_extra

    require_extra("cryptography", "starlette", "uvicorn")
    if attestation_anchors or attestation_gce_jwks:
        require_extra("asn1crypto")
    from vmprep.server.serve import ServeOptions
    from vmprep.server.serve import serve as run

    run(
        ServeOptions(
            configs=configs,
            keys=keys,
            data_dir=data_dir,
            host=host,
            port=port,
            tokens=tokens,
            certfile=certfile,
            keyfile=keyfile,
            poll=poll,
            forwarded_allow_ips=forwarded_allow_ips,
            access_log=access_log,
            allow_anonymous=allow_anonymous,
            header_timeout=header_timeout,
            body_timeout=body_timeout,
            max_connections=max_connections,
            max_per_client=max_per_client,
            store=store,
            workers=workers,
            reports_only=reports_only,
            shutdown_timeout=shutdown_timeout,
            attestation_anchors=attestation_anchors,
            attestation_audience=attestation_audience,
            attestation_gce_jwks=attestation_gce_jwks,
            attestation_aws_max_age=attestation_aws_max_age,
            attestation_clock_skew=attestation_clock_skew,
        )
    )
