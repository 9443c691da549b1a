"""Attestation evidence for config fetches: a document the cloud signed, read from its
metadata service and sent as `Vmprep-Attestation: <kind> <base64url>` (docs/protocol.md
"Attestation", issue #15). The service verifies it; the agent only fetches and forwards it.

- `azure-imds`: a nonce from the service (`POST <base>/v1/attestation/challenge`), then
  `GET {metadata}/metadata/attested/document?api-version=2020-09-01&nonce=<nonce>` with
  `Metadata: true`.
  https://learn.microsoft.com/azure/virtual-machines/instance-metadata-service#attested-data
- `aws-iid`: IMDSv2, `PUT {metadata}/latest/api/token` with
  `X-aws-ec2-metadata-token-ttl-seconds`, then
  `GET {metadata}/latest/dynamic/instance-identity/rsa2048` with `X-aws-ec2-metadata-token`.
  https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/verify-rsa2048.html
  https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/configuring-instance-metadata-service.html
- `gce-iit`: `GET {metadata}/computeMetadata/v1/instance/service-accounts/default/identity
  ?audience=<base>&format=full` with `Metadata-Flavor: Google`.
  https://cloud.google.com/compute/docs/instances/verifying-instance-identity

`<base>` is the service's base URL: the config URL before its `/v1/config/` path (as
`vmprep serve` and `vmprep publish` lay their paths out), without a trailing slash.

Metadata requests go straight to the metadata service, never through a proxy (the agent's
HTTP client ignores proxy settings): Azure says IMDS "is not intended to be used behind a
proxy" (https://learn.microsoft.com/azure/virtual-machines/instance-metadata-service#proxies),
AWS IMDSv2 refuses token requests carrying `X-Forwarded-For`
(https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/instance-metadata-v2-how-it-works.html),
and Google's metadata server answers only on the instance's own network
(https://cloud.google.com/compute/docs/metadata/querying-metadata).

Each metadata request is short (at most `METADATA_TIMEOUT`); a metadata service that does
not answer, or answers 5xx, is a transient failure retried under the fetch's own policy
(`MetadataUnavailable`), and when the budget is spent the fetch fails with
`attestation_unavailable`. An answer that waiting will not change (a 404: no service account
on GCE, a document the service does not give) fails at once with the same code.

The document is a credential for as long as it is valid: it is never logged, and error
messages name the URL path and the status, never a body, a nonce or a token.
"""

from __future__ import annotations

import base64
import json
import logging
from urllib.parse import quote, urlsplit, urlunsplit

from vmprep.agent.http import HttpError, Response, Session
from vmprep.agent.retry import Transient

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

log = logging.getLogger("vmprep.agent.attestation")

KINDS = ("azure-imds", "aws-iid", "gce-iit")
DEFAULT_METADATA = {
    "azure-imds": "http://169.254.169.254",
    "aws-iid": "http://169.254.169.254",
    "gce-iit": "http://metadata.google.internal",
}
HEADER = "Vmprep-Attestation"
MAX_HEADER = 16384  # the service refuses a longer value (docs/protocol.md)
METADATA_TIMEOUT = 5.0
DOCUMENT_MAX = 12 * 1024  # a longer document makes a header over MAX_HEADER
CHALLENGE_PATH = "/v1/attestation/challenge"
_CONFIG_PATH = "/v1/config/"
_NO_CHALLENGE = frozenset({404, 405, 501})
AWS_TOKEN_TTL = "300"  # seconds; one fetch needs a few


class AttestationError(Exception):
    """No evidence can be had, and waiting will not change that."""

    code = "attestation_unavailable"


class MetadataUnavailable(Transient):
    """The metadata service (or the challenge endpoint) did not answer usefully: retried."""


def service_base(url: str) -> str:
    """`https://cfg.example/fleet` for `https://cfg.example/fleet/v1/config/{role}/{id}`; the
    origin when the URL has no `/v1/config/` path. No trailing slash, no query."""
    parts = urlsplit(url)
    path = parts.path
    cut = path.find(_CONFIG_PATH)
    prefix = path[:cut] if cut >= 0 else ""
    return urlunsplit((parts.scheme, parts.netloc, prefix.rstrip("/"), "", ""))


def header_value(kind: str, raw: bytes) -> str:
    """`<kind> <base64url of raw, no padding>`."""
    return kind + " " + base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


class Attester:
    """Evidence for one fetch: `header(url)` gives the header for a config request to `url`
    (None when the service offers no attestation); a fresh challenge for every Azure request,
    the AWS document and the GCE token (per audience) fetched once per fetch."""

    def __init__(
        self,
        kind: str,
        *,
        instance_id: str,
        service: Session,
        metadata_url: str | None = None,
        timeout: float = METADATA_TIMEOUT,
        service_headers: dict[str, str] | None = None,
    ) -> None:
        if kind not in KINDS:
            raise ValueError(f"unknown attestation kind {kind!r} (one of {', '.join(KINDS)})")
        self.kind = kind
        self.instance_id = instance_id
        self.base = (metadata_url or DEFAULT_METADATA[kind]).rstrip("/")
        self._service = service
        self._service_headers = service_headers or {}
        self._metadata = Session(timeout=min(timeout, METADATA_TIMEOUT), allow_http=True)
        self._cache: dict[str, bytes] = {}

    def header(self, url: str) -> str | None:
        fetchers: dict[str, Callable[[str], bytes | None]] = {
            "azure-imds": self._azure,
            "aws-iid": self._aws,
            "gce-iit": self._gce,
        }
        raw = fetchers[self.kind](service_base(url))
        if raw is None:
            return None
        value = header_value(self.kind, raw)
        if len(value) > MAX_HEADER:
            raise AttestationError(
                f"{self.kind}: the metadata service's document makes a header of {len(value)} "
                f"bytes, over the protocol's {MAX_HEADER}"
            )
        return value

    # -- metadata ----------------------------------------------------------------------------
    def _metadata_request(
        self, method: str, path: str, headers: dict[str, str], what: str
    ) -> Response:
        url = self.base + path
        shown = self.base + path.split("?", 1)[0]  # the query may carry a nonce or audience
        try:
            response = self._metadata.request(
                method,
                url,
                headers=headers,
                body=b"" if method == "PUT" else None,
                max_bytes=DOCUMENT_MAX,
            )
        except HttpError as exc:
            if exc.transient:
                raise MetadataUnavailable(
                    f"{self.kind}: the metadata service did not answer ({what} at {shown}): "
                    f"{_strip_query(str(exc), url, shown)}"
                ) from None
            raise AttestationError(
                f"{self.kind}: {what}: {_strip_query(str(exc), url, shown)}"
            ) from None
        status = response.status
        if status == 429 or 500 <= status <= 599:
            raise MetadataUnavailable(
                f"{self.kind}: the metadata service answered HTTP {status} ({what} at {shown})",
                response.header("Retry-After"),
            )
        if status != 200 or not response.body.strip():
            raise AttestationError(
                f"{self.kind}: the metadata service answered HTTP {status}"
                f"{' with nothing' if status == 200 else ''} ({what} at {shown})"
                + _HINTS.get((self.kind, status), "")
            )
        return response

    def _azure(self, base: str) -> bytes | None:
        nonce = self._challenge(base)
        if nonce is None:
            return None
        response = self._metadata_request(
            "GET",
            f"/metadata/attested/document?api-version=2020-09-01&nonce={nonce}",
            {"Metadata": "true", "Accept": "application/json"},
            "attested document",
        )
        return response.body

    def _aws(self, base: str) -> bytes:
        if "aws" not in self._cache:
            token = self._metadata_request(
                "PUT",
                "/latest/api/token",
                {"X-aws-ec2-metadata-token-ttl-seconds": AWS_TOKEN_TTL},
                "IMDSv2 token",
            ).body
            self._cache["aws"] = self._metadata_request(
                "GET",
                "/latest/dynamic/instance-identity/rsa2048",
                {"X-aws-ec2-metadata-token": token.decode("ascii", "replace").strip()},
                "instance identity document",
            ).body
        return self._cache["aws"]

    def _gce(self, base: str) -> bytes:
        if base not in self._cache:
            self._cache[base] = self._metadata_request(
                "GET",
                "/computeMetadata/v1/instance/service-accounts/default/identity"
                f"?audience={quote(base, safe='')}&format=full",
                {"Metadata-Flavor": "Google"},
                "identity token",
            ).body.strip()
        return self._cache[base]

    # -- the service's challenge ---------------------------------------------------------------
    def _challenge(self, base: str) -> str | None:
        """A fresh nonce, or None when the service has no challenge endpoint (an older
        `vmprep serve`, a static tree): the fetch then goes without attestation."""
        url = base + CHALLENGE_PATH
        body = json.dumps({"instance_id": self.instance_id}).encode("utf-8")
        headers = {
            **self._service_headers,
            "Accept": "application/json",
            "Content-Type": "application/json",
        }
        try:
            response = self._service.request(
                "POST", url, headers=headers, body=body, max_bytes=4096
            )
        except HttpError as exc:
            if exc.transient:
                raise MetadataUnavailable(f"attestation challenge: {exc}") from None
            raise AttestationError(f"attestation challenge: {exc}") from None
        status = response.status
        if status in _NO_CHALLENGE:
            log.info(
                "%s offers no attestation challenge (HTTP %d): fetching without attestation",
                url,
                status,
            )
            return None
        if status == 429 or 500 <= status <= 599 or status == 408:
            raise MetadataUnavailable(
                f"attestation challenge: HTTP {status} from {url}", response.header("Retry-After")
            )
        if status in (401, 403):
            raise _ChallengeRefused("unauthorized", f"HTTP {status} from {url}")
        if status != 200:
            raise AttestationError(f"attestation challenge: unexpected HTTP {status} from {url}")
        try:
            nonce = json.loads(response.body.decode("utf-8"))["nonce"]
        except (ValueError, KeyError, TypeError):
            nonce = None
        if not isinstance(nonce, str) or not (nonce.isascii() and nonce.isdigit()):
            raise AttestationError(f"attestation challenge: {url} gave no usable nonce")
        return nonce


class _ChallengeRefused(AttestationError):
    """The service refused the challenge as it would the fetch (a wrong fleet token)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


_HINTS = {
    ("gce-iit", 404): ": the instance has no service account; attach one (any, even without "
    "roles) or set phone_home.attestation: 'off' in the spec",
    ("aws-iid", 401): ": the IMDSv2 token was refused",
    ("aws-iid", 403): ": the instance metadata service is turned off for this instance",
    ("azure-imds", 400): ": IMDS refused the request",
}


def _strip_query(text: str, url: str, shown: str) -> str:
    """An error text without the URL's query (a nonce, an audience)."""
    return text.replace(url, shown)
