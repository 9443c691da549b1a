"""Fetching the remote config: docs/protocol.md "Fetching a config", "The signature" and the
outcome table, end to end. The signature is verified over the exact body bytes before the
document is parsed.

Outcome kinds: `document` (verified and checked), `none` (204, or 404 from every URL),
`not_modified` (304 after sending `Vmprep-Last-Serial`), `refused` (no retry: 401/403, a bad
redirect, too large, an encoding, a bad signature or document, any other status), and
`unreachable` (the retry budget is spent). An unexpected status (and a 304 without a
`Vmprep-Last-Serial` having been sent, a URL that cannot be built) is refused with the code
`unreachable`: the protocol has no more precise one, and the message says what happened.

Budget: each request (each URL of the list, the sidecar) gets `retry.attempts`; the
`retry.deadline`, when set, counts from the start of the fetch for all of them.
"""

from __future__ import annotations

import hashlib
import logging
import random
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlsplit, urlunsplit

from vmprep.agent import document, verify
from vmprep.agent.http import HttpError, Response, Session
from vmprep.agent.retry import BudgetSpent, Policy, Retrier, Transient
from vmprep.protocol.durations import parse_duration

if TYPE_CHECKING:
    from vmprep.agent.attestation import Attester
    from vmprep.agent.identity import Identity

log = logging.getLogger("vmprep.agent.fetch")

DEFAULT_MAX_BYTES = 4 * 1024 * 1024
SIDECAR_MAX_BYTES = 4096
TRANSIENT = frozenset({408, 429})
ROLE_DOCUMENT = "_role"  # the role-wide document's name in a URL (docs/protocol.md)
_PLACEHOLDER = re.compile(r"\{(role|instance_id|computer_name|mac)\}")
# The service's `Vmprep-Error` on a 401/403 that attestation decided, and the report's code
# for each (docs/protocol.md "Attestation"). `attestation-nonce` is retried once first.
ATTESTATION_ERRORS = {
    "attestation-required": "attestation_required",
    "attestation-malformed": "attestation_malformed",
    "attestation-invalid": "attestation_invalid",
    "attestation-nonce": "attestation_nonce",
    "attestation-mismatch": "attestation_mismatch",
    "attestation-not-allowed": "attestation_not_allowed",
}


@dataclass(frozen=True)
class FetchOutcome:
    kind: str
    document: dict[str, Any] | None = None
    sha256: str | None = None
    error_code: str | None = None
    message: str | None = None


class _Refused(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


class UrlError(ValueError):
    """A URL template that cannot be filled for this instance."""


def fill_url(template: str, identity: Identity, role: str) -> str:
    """A URL template with each placeholder percent-encoded as a path segment."""
    values = {
        "role": role,
        "instance_id": identity.instance_id,
        "computer_name": identity.computer_name,
        "mac": identity.mac,
    }

    def one(match: re.Match[str]) -> str:
        value = values[match.group(1)]
        if not value:
            raise UrlError(f"{template} needs {{{match.group(1)}}}, which this instance lacks")
        return quote(value, safe="")

    return _PLACEHOLDER.sub(one, template)


def sidecar_url(url: str) -> str:
    """`<url>.sig`: `.sig` appended to the path, the query kept."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, (parts.path or "/") + ".sig", parts.query, ""))


def _reveal(token: object) -> str:
    reveal = getattr(token, "reveal", None)
    return str(reveal()) if callable(reveal) else str(token)


def request_headers(
    identity: Identity,
    role: str,
    agent_version: str,
    last_completed_serial: int | None,
    secrets: Sequence[str] = (),
) -> dict[str, str]:
    headers = {
        "User-Agent": f"vmprep-agent/{agent_version}",
        "Accept": "application/json",
        "Accept-Encoding": "identity",
        "Vmprep-Instance-Id": identity.instance_id,
        "Vmprep-Role": role,
    }
    if last_completed_serial is not None:
        headers["Vmprep-Last-Serial"] = str(last_completed_serial)
    if secrets:
        headers["Vmprep-Secrets"] = ", ".join(sorted(set(secrets)))
    return headers


class _Fetch:
    def __init__(
        self,
        session: Session,
        retrier: Retrier,
        headers: dict[str, str],
        max_bytes: int,
        attester: Attester | None = None,
    ) -> None:
        self.session = session
        self.retrier = retrier
        self.headers = headers
        self.max_bytes = max_bytes
        self.attester = attester

    def get(self, url: str, cap: int, *, attest: bool = False) -> Response:
        """One GET with retries; transient statuses retried, others returned. With `attest`,
        each attempt carries fresh evidence (a new Azure nonce every time)."""

        def attempt() -> Response:
            headers = self.headers
            if attest and self.attester is not None:
                headers = {**headers, **self._evidence(url)}
            try:
                response = self.session.request("GET", url, headers=headers, max_bytes=cap)
            except HttpError as exc:
                if exc.transient:
                    raise Transient(str(exc)) from None
                raise _Refused(exc.code, str(exc)) from None
            if response.status in TRANSIENT or 500 <= response.status <= 599:
                raise Transient(
                    f"HTTP {response.status} from {url}", response.header("Retry-After")
                )
            return response

        return self.retrier.run(attempt)

    def _evidence(self, url: str) -> dict[str, str]:
        from vmprep.agent.attestation import HEADER, AttestationError

        assert self.attester is not None
        try:
            value = self.attester.header(url)
        except AttestationError as exc:
            raise _Refused(exc.code, str(exc)) from None
        return {} if value is None else {HEADER: value}

    def signature(self, response: Response) -> list[verify.Entry]:
        header = response.header("Vmprep-Signature")
        if header is not None:
            return verify.parse_header(header)
        url = sidecar_url(response.url)
        sidecar = self.get(url, SIDECAR_MAX_BYTES)
        if sidecar.status in (404, 410):
            return []
        if sidecar.status in (401, 403):
            raise _Refused("unauthorized", f"HTTP {sidecar.status} from {url}")
        if sidecar.status != 200:
            raise _Refused("signature", f"HTTP {sidecar.status} from {url}")
        try:
            return verify.parse_sidecar(sidecar.body)
        except ValueError as exc:
            raise _Refused("signature", f"{url}: {exc}") from None


def fetch_config(
    phone_home: Mapping[str, Any],
    identity: Identity,
    *,
    role: str,
    token: object | None,
    last_completed_serial: int | None,
    accepted: tuple[int, str] | None,
    agent_version: str,
    secrets: Sequence[str] = (),
    attestation: str | None = None,
    now: Callable[[], float] = time.time,
    sleep: Callable[[float], None] = time.sleep,
    rand: Callable[[float, float], float] | None = None,
) -> FetchOutcome:
    """Fetch, verify and check the remote config; never raises for network or data faults.
    `attestation` is the kind of evidence to send (vmprep.agent.attestation), None for none."""
    urls = phone_home["url"]
    templates = [urls] if isinstance(urls, str) else list(urls)
    try:
        keys = verify.trusted_keys(phone_home.get("trusted_keys") or [])
        targets = [fill_url(t, identity, role) for t in templates]
        timeout = parse_duration(phone_home.get("timeout", "30s"))
        policy = Policy.from_config(phone_home.get("retry"))
        max_bytes = int(phone_home.get("max_bytes", DEFAULT_MAX_BYTES))
    except (ValueError, TypeError) as exc:
        return FetchOutcome("refused", error_code="unreachable", message=f"phone_home: {exc}")
    session = Session(
        timeout=timeout,
        cafile=phone_home.get("ca_bundle"),
        allow_http=bool(phone_home.get("allow_insecure_http", False)),
        authorization=None if token is None else "Bearer " + _reveal(token),
        auth_urls=targets,
    )
    retrier = Retrier(
        policy,
        sleep=sleep,
        now=now,
        on_retry=lambda n, wait, why: log.warning("retry %d in %.1fs: %s", n + 1, wait, why),
        rand=rand or random.uniform,
    )
    headers = request_headers(identity, role, agent_version, last_completed_serial, secrets)
    attester = None
    if attestation is not None:
        from vmprep.agent.attestation import Attester

        try:
            attester = Attester(
                attestation,
                instance_id=identity.instance_id,
                service=session,
                metadata_url=phone_home.get("metadata_url"),
                timeout=timeout,
                service_headers={"User-Agent": headers["User-Agent"]},
            )
        except ValueError as exc:
            return FetchOutcome("refused", error_code="unreachable", message=f"phone_home: {exc}")
    fetch = _Fetch(session, retrier, headers, max_bytes, attester)
    try:
        outcome = retrier.run(  # whole passes over the URL list (docs/protocol.md)
            lambda: _walk(
                fetch, targets, keys, identity, role, last_completed_serial, accepted, now
            )
        )
        if outcome.document is not None:
            _check_secrets(outcome.document, secrets)
        return outcome
    except _Refused as exc:
        return FetchOutcome("refused", error_code=exc.code, message=str(exc))
    except BudgetSpent as exc:
        return FetchOutcome(
            "unreachable",
            error_code=_budget_code(exc.last),
            message=f"gave up after {exc.attempts} attempt(s): {exc}",
        )


def _budget_code(last: Transient | None) -> str:
    if isinstance(last, UnknownRole):
        return "unknown_role"
    from vmprep.agent.attestation import MetadataUnavailable

    return "attestation_unavailable" if isinstance(last, MetadataUnavailable) else "unreachable"


def unknown_role(response: Response) -> bool:
    """docs/protocol.md "No such role": `Vmprep-Error: unknown-role` on a 404, or a 404 for a
    role-wide `.../_role` URL (a published tree holds `_role` for every role it knows)."""
    said = (response.header("Vmprep-Error") or "").strip().lower()
    return said == "unknown-role" or urlsplit(response.url).path.endswith("/" + ROLE_DOCUMENT)


def _walk(
    fetch: _Fetch,
    targets: list[str],
    keys: dict[str, bytes],
    identity: Identity,
    role: str,
    last_serial: int | None,
    accepted: tuple[int, str] | None,
    now: Callable[[], float],
) -> FetchOutcome:
    """One pass over the URL list; `Transient` when a service said it knows no such role."""
    unknown: str | None = None
    for url in targets:
        response = fetch.get(url, fetch.max_bytes, attest=True)
        if response.status == 403 and _service_error(response) == "attestation-nonce":
            # The nonce expired or was used (a retried request): a new one, once.
            log.warning("attestation nonce refused by %s; trying once more with a new one", url)
            response = fetch.get(url, fetch.max_bytes, attest=True)
        status = response.status
        if status == 404:
            if unknown is None and unknown_role(response):
                unknown = url
            continue
        if status == 204:
            return FetchOutcome("none", message=f"HTTP 204 from {url}")
        if status == 304:
            if last_serial is None:
                raise _Refused("unreachable", f"HTTP 304 from {url} without Vmprep-Last-Serial")
            return FetchOutcome("not_modified", message=f"serial {last_serial} is current")
        if status in (400, 401, 403):
            said = _service_error(response)
            if said in ATTESTATION_ERRORS:
                raise _Refused(
                    ATTESTATION_ERRORS[said],
                    f"HTTP {status} {said} from {url}: {_error_text(response, 'message')}",
                )
            if status == 400:
                raise _Refused("unreachable", f"unexpected HTTP 400 from {url}")
            raise _Refused("unauthorized", f"HTTP {status} from {url}")
        if status == 409:
            raise _Refused("missing_secrets", f"HTTP 409 from {url}: {_error_text(response)}")
        if status != 200:
            raise _Refused("unreachable", f"unexpected HTTP {status} from {url}")
        return _accept(fetch, response, keys, identity, role, accepted, now)
    if unknown is not None:
        # Not "nothing for me": a renamed or briefly missing role file must not let the
        # instance finish without its configuration. Retried until the budget is spent.
        raise UnknownRole(f"{unknown}: the service knows no role {role!r}")
    return FetchOutcome("none", message="HTTP 404 from every URL")


class UnknownRole(Transient):
    """A service answered that it knows no such role (retried like a transient failure)."""


def _service_error(response: Response) -> str:
    """The service's `Vmprep-Error` code, lower case ("" when absent)."""
    return (response.header("Vmprep-Error") or "").strip().lower()


def _error_text(response: Response, field: str = "error") -> str:
    """A field of a JSON error answer, shortened; a fixed text when there is none."""
    import json

    try:
        message = json.loads(response.body.decode("utf-8")).get(field)
    except (ValueError, AttributeError):
        message = None
    return str(message)[:300] if isinstance(message, str) else "the service gave no reason"


def _check_secrets(doc: Mapping[str, Any], wanted: Sequence[str]) -> None:
    """Every secret the baked steps asked for came with the document, or it is refused."""
    missing = sorted(set(wanted) - set(doc.get("secrets") or {}))
    if missing:
        names = ", ".join(repr(n) for n in missing)
        raise _Refused(
            "missing_secrets",
            f"the document does not hold secret(s) {names}, which the baked steps need: "
            "declare them under the role's `secrets:`",
        )


def _accept(
    fetch: _Fetch,
    response: Response,
    keys: dict[str, bytes],
    identity: Identity,
    role: str,
    accepted: tuple[int, str] | None,
    now: Callable[[], float],
) -> FetchOutcome:
    body = response.body
    entries = fetch.signature(response)
    if not entries:
        raise _Refused("signature", f"{response.url} carries no usable signature entry")
    keyid = verify.verify(body, entries, keys)
    if keyid is None:
        raise _Refused("signature", f"no signature on {response.url} verifies with a trusted key")
    digest = hashlib.sha256(body).hexdigest()
    try:
        doc = document.check_document(
            body,
            sha256=digest,
            role=role,
            instance_id=identity.instance_id,
            now=now(),
            accepted=accepted,
        )
    except document.DocumentError as exc:
        raise _Refused(exc.code, f"{response.url}: {exc}") from None
    log.info("accepted serial %s from %s (key %s)", doc["serial"], response.url, keyid)
    return FetchOutcome("document", document=doc, sha256=digest)
