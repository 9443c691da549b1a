"""Deploy-time inputs: the role and variables a deployment gives this machine (docs/inputs.md).

One image, many roles: the image builder declares in `agent.inputs` which keys the platform may
set (`role`, and variables by name), the sources asked in order, and the values each key may
take. Everything a source returns is untrusted: each value is checked against the declaration
(text, at most 256 characters, no control or format characters, one of `values` and/or a
full match of `pattern`; a role also in the protocol's name form) before anything uses it, and
a refused value stops the agent with an error naming the key and the source — nothing is half
applied. A source that is not there (no such metadata service, nothing set) is skipped. The
first source that has a key decides it. Values are decided once per instance and kept in its
state, so a tag changed later cannot flip a machine's role between two boots.

Sources, each bounded by `inputs.timeout` and a size cap:
- `azure-tags`, `azure-user-data`: IMDS `/metadata/instance/compute` (`tagsList`, `userData`,
  base64) with `Metadata: true`.
  https://learn.microsoft.com/azure/virtual-machines/instance-metadata-service
- `azure-custom-data`: `%SystemDrive%\\AzureData\\CustomData.bin`, written decoded by Azure.
  https://learn.microsoft.com/azure/virtual-machines/custom-data
- `aws-tags`: IMDSv2 `/latest/meta-data/tags/instance/<tag>` (the launch must allow tags in
  instance metadata). https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/work-with-tags-in-IMDS.html
- `aws-user-data`: IMDSv2 `/latest/user-data`.
  https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/instancedata-add-user-data.html
- `gce-attributes`: `/computeMetadata/v1/instance/attributes/<key>` with
  `Metadata-Flavor: Google`. https://cloud.google.com/compute/docs/metadata/querying-metadata
- `vmware-guestinfo`: `vmtoolsd --cmd "info-get guestinfo.<key>"` (VMware Tools).
  https://knowledge.broadcom.com/external/article?legacyId=1014038
- `hyperv-kvp`: values the host pushes with the KVP data exchange service, which a Windows
  guest sees under `HKLM\\SOFTWARE\\Microsoft\\Virtual Machine\\External`.
  https://learn.microsoft.com/windows-server/virtualization/hyper-v/integration-services-data-exchange
- `file`: a local file (`inputs.file`), for other hypervisors and for tests.

Tag-like sources hold a key as `vmprep-<key>` (`vmprep-role`, `vmprep-site`); user data, custom
data and the file hold a `[vmprep]` section of `key = value` lines (`parse_section`), and
whatever else they hold is left to other tools.
"""

from __future__ import annotations

import re
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing is not imported at run time: start-up time
    from collections.abc import Callable
    from typing import Any

SOURCES = (
    "azure-tags",
    "azure-user-data",
    "azure-custom-data",
    "aws-tags",
    "aws-user-data",
    "gce-attributes",
    "vmware-guestinfo",
    "hyperv-kvp",
    "file",
)
ENDPOINTS = {
    "azure-imds": "http://169.254.169.254",
    "ec2-imds": "http://169.254.169.254",
    "gce-metadata": "http://169.254.169.254",
}
PREFIX = "vmprep-"
MAX_VALUE = 256
MAX_DATA = 64 * 1024  # Azure's and EC2's own limits on custom/user data are 64 KiB and 16 KiB
_ROLE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")  # docs/protocol.md "Names and keys"
_SECTION = re.compile(r"\[\s*([^\]]*?)\s*\]")
_LINE = re.compile(r"([a-z][a-z0-9_]{0,31})\s*=\s*(.*)")


class InputError(Exception):
    """A value from the platform that is refused, or a required key no source has."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code  # invalid_input | input_missing


class Unavailable(Exception):
    """The source is not there on this machine (no such service, nothing set): skip it."""


def parse_section(text: str, source: str) -> dict[str, str]:
    """The `[vmprep]` section of user data: `key = value` lines up to the next `[...]` line.
    Blank lines and `#`/`;` comments are ignored; any other line in the section is refused
    (a typo must not pass silently). No section: an empty result."""
    found: dict[str, str] = {}
    inside = False
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        section = _SECTION.fullmatch(line)
        if section is not None:
            inside = section.group(1).lower() == "vmprep"
            continue
        if not inside or not line or line[0] in "#;":
            continue
        match = _LINE.fullmatch(line)
        if match is None:
            raise InputError(
                "invalid_input",
                f"{source}: line {number} of the [vmprep] section is not `key = value`",
            )
        key, value = match.group(1), match.group(2).strip()
        if key in found:
            raise InputError("invalid_input", f"{source}: key {key!r} is set twice")
        found[key] = value
    return found


def _text(data: bytes, source: str, *, shared: bool = False) -> str:
    """UTF-8 text within the size cap. `shared` (user and custom data, which other tools use
    too): data that is not text (a gzip, a MIME archive in another charset) is not ours and
    the source is skipped; elsewhere it is refused."""
    if len(data) > MAX_DATA:
        raise InputError(
            "invalid_input", f"{source}: {len(data)} bytes, more than the {MAX_DATA} accepted"
        )
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        if shared:
            raise Unavailable("not UTF-8 text: left to other tools") from None
        raise InputError("invalid_input", f"{source}: not UTF-8 text") from None


def check_value(key: str, value: str, rule: dict[str, Any], source: str) -> str:
    """`value` when the declaration allows it; InputError naming key and source otherwise."""
    import unicodedata

    def refuse(why: str) -> InputError:
        return InputError("invalid_input", f"input {key!r} from {source}: {why}")

    if not value:
        raise refuse("empty")
    if len(value) > MAX_VALUE:
        raise refuse(f"{len(value)} characters, more than {MAX_VALUE}")
    for ch in value:
        if unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Co", "Cn"):
            raise refuse(f"holds the control or format character U+{ord(ch):04X}")
    values = rule.get("values")
    if values is not None and value not in values:
        raise refuse(f"{value!r} is not one of the values the image allows")
    pattern = rule.get("pattern")
    if pattern is not None and re.fullmatch(pattern, value) is None:
        raise refuse(f"{value!r} does not match the pattern the image allows")
    if key == "role" and (not _ROLE.fullmatch(value) or value.endswith(".sig")):
        raise refuse(f"{value!r} is not a role name")
    return value


class Sources:
    """The sources of one resolution, each fetched at most once."""

    def __init__(
        self,
        *,
        timeout: float,
        endpoints: dict[str, str] | None = None,
        options: dict[str, Any] | None = None,
        file: str | None = None,
        log: Callable[[str], None] | None = None,
    ) -> None:
        self.timeout = timeout
        self.endpoints = {**ENDPOINTS, **(endpoints or {})}
        self.options = options or {}
        self.file = file
        self.log = log or (lambda _msg: None)
        self._azure: dict[str, Any] | None = None
        self._ec2_token: str | None = None

    # -- HTTP metadata services ----------------------------------------------------------------
    def _get(self, url: str, headers: dict[str, str], method: str = "GET") -> bytes | None:
        """The body of a 200, None for a 404; Unavailable when there is no such service."""
        from vmprep.agent.http import HttpError, Session

        session = Session(timeout=self.timeout, allow_http=True)
        try:
            response = session.request(
                method,
                url,
                headers=headers,
                body=b"" if method == "PUT" else None,
                max_bytes=4 * MAX_DATA,
            )
        except HttpError as exc:
            if exc.code == "too_large":
                raise InputError("invalid_input", f"{url}: larger than accepted") from None
            raise Unavailable(str(exc)) from None
        if response.status == 404:
            return None
        if response.status != 200:
            raise Unavailable(f"HTTP {response.status} from {url}")
        return response.body

    def azure_compute(self) -> dict[str, Any]:
        if self._azure is None:
            import json

            base = self.endpoints["azure-imds"].rstrip("/")
            body = self._get(
                f"{base}/metadata/instance/compute?api-version=2021-02-01",
                {"Metadata": "true", "Accept": "application/json"},
            )
            if body is None:
                raise Unavailable("Azure IMDS has no compute metadata")
            try:
                compute = json.loads(body)
            except ValueError:
                raise InputError("invalid_input", "azure IMDS: not JSON") from None
            if not isinstance(compute, dict):
                raise InputError("invalid_input", "azure IMDS: not a JSON object")
            self._azure = compute
        return self._azure

    def ec2(self, path: str) -> bytes | None:
        base = self.endpoints["ec2-imds"].rstrip("/")
        if self._ec2_token is None:
            token = self._get(
                f"{base}/latest/api/token",
                {"X-aws-ec2-metadata-token-ttl-seconds": "300"},
                method="PUT",
            )
            if not token:
                raise Unavailable("EC2 IMDSv2 gave no token")
            self._ec2_token = token.decode("ascii", "replace").strip()
        return self._get(f"{base}{path}", {"X-aws-ec2-metadata-token": self._ec2_token})

    # -- one source: {key: value} for the keys it has -------------------------------------------
    def read(self, source: str, keys: list[str]) -> dict[str, str]:
        reader: Callable[[list[str]], dict[str, str]] = getattr(
            self, "_" + source.replace("-", "_")
        )
        return reader(keys)

    def _tags(self, found: dict[str, str], keys: list[str], source: str) -> dict[str, str]:
        out: dict[str, str] = {}
        for key in keys:
            if PREFIX + key in found:
                out[key] = found[PREFIX + key]
        for name in found:
            if name.startswith(PREFIX) and name[len(PREFIX) :] not in keys:
                self.log(f"inputs: {source} sets {name!r}, which this image does not declare")
        return out

    def _azure_tags(self, keys: list[str]) -> dict[str, str]:
        tags = self.azure_compute().get("tagsList") or []
        if not isinstance(tags, list):
            raise InputError("invalid_input", "azure-tags: tagsList is not a list")
        found: dict[str, str] = {}
        for tag in tags:
            if isinstance(tag, dict) and isinstance(tag.get("name"), str):
                value = tag.get("value")
                if not isinstance(value, str):
                    raise InputError(
                        "invalid_input", f"azure-tags: tag {tag['name']!r} is not text"
                    )
                found[tag["name"].lower()] = value  # Azure tag names ignore case
        return self._tags(found, keys, "azure-tags")

    def _azure_user_data(self, keys: list[str]) -> dict[str, str]:
        import base64
        import binascii

        encoded = self.azure_compute().get("userData") or ""
        if not isinstance(encoded, str):
            raise InputError("invalid_input", "azure-user-data: userData is not text")
        try:
            data = base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError):
            raise InputError("invalid_input", "azure-user-data: not base64") from None
        return parse_section(_text(data, "azure-user-data", shared=True), "azure-user-data")

    def _azure_custom_data(self, keys: list[str]) -> dict[str, str]:
        import os

        if sys.platform == "win32":  # pragma: no cover - Windows only
            drive = os.environ.get("SYSTEMDRIVE", "C:")
            path = drive + "\\AzureData\\CustomData.bin"
        else:
            path = os.path.join(str(self.options.get("sys_root", "/")), "AzureData/CustomData.bin")
        return parse_section(
            _text(self._file_bytes(path), "azure-custom-data", shared=True), "azure-custom-data"
        )

    def _aws_tags(self, keys: list[str]) -> dict[str, str]:
        from urllib.parse import quote

        out: dict[str, str] = {}
        for key in keys:
            body = self.ec2("/latest/meta-data/tags/instance/" + quote(PREFIX + key, safe=""))
            if body is not None:
                out[key] = _text(body, "aws-tags")
        return out

    def _aws_user_data(self, keys: list[str]) -> dict[str, str]:
        body = self.ec2("/latest/user-data")
        if body is None:
            return {}
        return parse_section(_text(body, "aws-user-data", shared=True), "aws-user-data")

    def _gce_attributes(self, keys: list[str]) -> dict[str, str]:
        from urllib.parse import quote

        base = self.endpoints["gce-metadata"].rstrip("/")
        out: dict[str, str] = {}
        for key in keys:
            url = f"{base}/computeMetadata/v1/instance/attributes/{quote(PREFIX + key, safe='')}"
            body = self._get(url, {"Metadata-Flavor": "Google"})
            if body is not None:
                out[key] = _text(body, "gce-attributes")
        return out

    def _vmware_guestinfo(self, keys: list[str]) -> dict[str, str]:
        import subprocess

        tool = self.options.get("vmtoolsd") or (
            "C:\\Program Files\\VMware\\VMware Tools\\vmtoolsd.exe"
            if sys.platform == "win32"
            else "vmtoolsd"
        )
        out: dict[str, str] = {}
        for key in keys:
            try:
                done = subprocess.run(
                    guestinfo_argv(str(tool), key),
                    capture_output=True,
                    timeout=self.timeout,
                    check=False,
                )
            except (OSError, subprocess.TimeoutExpired) as exc:
                raise Unavailable(f"VMware Tools: {exc}") from None
            if done.returncode == 0:  # non-zero: the key is not set
                out[key] = _text(done.stdout, "vmware-guestinfo").rstrip("\r\n")
        return out

    def _hyperv_kvp(self, keys: list[str]) -> dict[str, str]:
        if sys.platform != "win32":
            raise Unavailable("Hyper-V data exchange is read from the Windows registry")
        import winreg  # pragma: no cover - Windows only (run in the Windows bench)

        out: dict[str, str] = {}
        try:
            handle = winreg.OpenKey(winreg.HKEY_LOCAL_MACHINE, KVP_KEY)
        except OSError:
            raise Unavailable(f"no HKLM\\{KVP_KEY}") from None
        with handle:
            for key in keys:
                try:
                    value, kind = winreg.QueryValueEx(handle, PREFIX + key)
                except OSError:
                    continue
                if kind != winreg.REG_SZ or not isinstance(value, str):
                    raise InputError("invalid_input", f"hyperv-kvp: {PREFIX + key} is not text")
                out[key] = value
        return out

    def _file(self, keys: list[str]) -> dict[str, str]:
        if not self.file:
            raise Unavailable("no inputs.file configured")
        return parse_section(_text(self._file_bytes(self.file), "file"), "file")

    @staticmethod
    def _file_bytes(path: str) -> bytes:
        try:
            with open(path, "rb") as handle:
                return handle.read(MAX_DATA + 1)
        except FileNotFoundError:
            raise Unavailable(f"{path} does not exist") from None
        except OSError as exc:
            raise InputError("invalid_input", f"cannot read {path}: {exc}") from None


KVP_KEY = "SOFTWARE\\Microsoft\\Virtual Machine\\External"


def guestinfo_argv(tool: str, key: str) -> list[str]:
    return [tool, "--cmd", f"info-get guestinfo.{PREFIX}{key}"]


def resolve(decl: dict[str, Any], sources: Sources, log: Callable[[str], None]) -> dict[str, Any]:
    """{key: {"value": ..., "source": ...}} for every declared key that has a value (a source's
    or the default); InputError when a value is refused or a required key has none."""
    rules: dict[str, dict[str, Any]] = decl["keys"]
    wanted = sorted(rules)
    decided: dict[str, Any] = {}
    for source in decl["sources"]:
        missing = [k for k in wanted if k not in decided]
        if not missing:
            break
        try:
            found = sources.read(source, missing)
        except Unavailable as exc:
            log(f"inputs: {source} skipped: {exc}")
            continue
        for key, value in found.items():
            if key not in rules:
                raise InputError(
                    "invalid_input", f"{source} sets {key!r}, which this image does not declare"
                )
            if key in decided:
                continue  # an earlier source decided it
            decided[key] = {"value": check_value(key, value, rules[key], source), "source": source}
    for key in wanted:
        if key in decided:
            continue
        rule = rules[key]
        if rule.get("required"):
            raise InputError(
                "input_missing",
                f"input {key!r} is required and none of {', '.join(decl['sources'])} has it",
            )
        if rule.get("default") is not None:
            decided[key] = {"value": rule["default"], "source": "default"}
    return decided
