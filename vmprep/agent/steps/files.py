"""file and download: absolute destinations, no `..`, written atomically (temp, fsync, rename)."""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
from pathlib import Path

from vmprep.agent.steps import Outcome, StepContext, StepError
from vmprep.protocol.atomic import FileBusyError, write_atomic

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing is not imported at run time: it costs start-up time
    from typing import Any

_LOOPBACK = ("127.0.0.1", "localhost", "[::1]")


def destination(raw: str) -> Path:
    """An absolute, normalised path with no `..` component."""
    parts = raw.replace("\\", "/").split("/")
    if ".." in parts:
        raise StepError(f"path {raw!r} contains '..'")
    if not os.path.isabs(raw):
        raise StepError(f"path {raw!r} is not absolute")
    return Path(os.path.normpath(raw))


def _write_atomic(path: Path, write: Any) -> None:
    """Retried while another process holds the target open (Windows), then a clear error."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        write_atomic(path, write)
    except FileBusyError as exc:
        raise StepError(exc.strerror or str(exc)) from None


def run_file(body: dict[str, Any], ctx: StepContext) -> Outcome:
    path = destination(str(body["path"]))
    content = str(ctx.vault.resolve(body["content"]))
    if body.get("encoding") == "base64":
        try:
            data = base64.b64decode(content, validate=True)
        except (binascii.Error, ValueError):
            raise StepError("file.content is not valid base64") from None
    else:
        data = content.encode("utf-8")
    if path.exists() and not body.get("overwrite", True):
        return Outcome(True, 0, f"{path} exists; left as it is (overwrite: false)")
    if path.is_file() and path.read_bytes() == data:
        return Outcome(True, 0, f"{path} already up to date")
    _write_atomic(path, lambda f: f.write(data))
    return Outcome(True, 0, f"wrote {len(data)} bytes to {path}")


def _sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _check_url(url: str, ctx: StepContext) -> None:
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    if parts.scheme == "https":
        return
    loopback_ok = ctx.options.get("allow_http_downloads_from_loopback") is True
    if (
        parts.scheme == "http"
        and loopback_ok
        and parts.hostname in ("127.0.0.1", "localhost", "::1")
    ):
        return
    raise StepError(f"download URL must be https: {url}")


def run_download(body: dict[str, Any], ctx: StepContext) -> Outcome:
    import ssl
    import urllib.request

    url = str(body["url"])
    _check_url(url, ctx)
    expected = str(body["sha256"]).lower()
    path = destination(str(body["to"]))
    if path.is_file() and _sha256_of(path) == expected:
        return Outcome(True, 0, f"{path} already present with the expected sha256")

    class NoDowngrade(urllib.request.HTTPRedirectHandler):
        def redirect_request(
            self, req: Any, fp: Any, code: int, msg: str, headers: Any, newurl: str
        ) -> Any:
            _check_url(newurl, ctx)
            return super().redirect_request(req, fp, code, msg, headers, newurl)

    from vmprep.agent.http import trust_context

    # The system store plus this step's own `ca_bundle`; never phone_home's (#19).
    bundle = body.get("ca_bundle")
    try:
        context = trust_context(None if bundle is None else str(bundle))
    except (OSError, ssl.SSLError) as exc:
        raise StepError(f"cannot load download.ca_bundle {bundle}: {exc}") from None
    opener = urllib.request.build_opener(urllib.request.HTTPSHandler(context=context), NoDowngrade)
    headers = {str(k): str(ctx.vault.resolve(v)) for k, v in (body.get("headers") or {}).items()}
    headers.setdefault("Accept-Encoding", "identity")
    request = urllib.request.Request(url, headers=headers)
    digest = hashlib.sha256()
    size = [0]

    def fetch(f: Any) -> None:
        with opener.open(request, timeout=ctx.timeout or 300) as response:
            while chunk := response.read(1 << 16):
                digest.update(chunk)
                size[0] += len(chunk)
                f.write(chunk)
        actual = digest.hexdigest()
        if actual != expected:
            raise StepError(f"sha256 mismatch for {url}: expected {expected}, got {actual}")

    try:
        _write_atomic(path, fetch)
    except OSError as exc:  # URLError, HTTPError, timeouts, disk errors
        raise StepError(f"download of {url} failed: {exc}") from None
    return Outcome(True, 0, f"downloaded {size[0]} bytes to {path}, sha256 verified")
