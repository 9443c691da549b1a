"""agent.json: loading, checking and defaults (docs/internals.md fixes the format)."""

from __future__ import annotations

import json
from pathlib import Path

from vmprep.protocol.durations import is_duration
from vmprep.protocol.strictjson import no_duplicate_keys

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing is not imported at run time: it costs start-up time
    from typing import Any

PLATFORMS = ("generic", "hyperv", "vmware", "azure", "aws", "gce")
IDENTITY_SOURCES = ("azure-imds", "ec2-imds", "gce-metadata", "smbios-uuid", "mac")
# vmprep.agent.attestation.SETTINGS (not imported here: the HTTP stack costs start-up time)
ATTESTATION_SETTINGS = ("auto", "off", "azure-imds", "aws-iid", "gce-iit")
ATTESTATION_BY_PLATFORM = {"azure": "azure-imds", "aws": "aws-iid", "gce": "gce-iit"}
PHONE_HOME_DEFAULTS: dict[str, Any] = {
    "timeout": "30s",
    "on_unreachable": "continue",
    "max_bytes": 4 * 1024 * 1024,
    "allow_insecure_http": False,
}
RETRY_DEFAULTS: dict[str, Any] = {"attempts": 30, "initial": "2s", "max": "5m", "jitter": "full"}


class ConfigError(Exception):
    """agent.json is missing, not JSON, or not in the expected shape."""


class AgentConfig:
    """agent.json, checked, with defaults. (A plain class: `dataclasses` costs start-up time.)"""

    def __init__(
        self,
        *,
        path: Path,
        image: dict[str, Any],
        install_dir: str,
        identity: list[str],
        variables: dict[str, Any],
        keep_answer_files: bool,
        answer_files: list[str],
        delete_answer_files: str,
        log_level: str,
        phone_home: dict[str, Any] | None,
        steps: list[Any],
        secrets: dict[str, str],
        endpoints: dict[str, str],
        platform_options: dict[str, Any],
        python: str | None = None,
        baked_secrets: list[str] | None = None,
        inputs: dict[str, Any] | None = None,
    ) -> None:
        self.path = path
        self.image = image
        self.install_dir = install_dir
        self.identity = identity
        self.variables = variables
        self.keep_answer_files = keep_answer_files
        self.answer_files = answer_files
        self.delete_answer_files = delete_answer_files  # "launch" or "done" (answerfiles.py)
        self.log_level = log_level
        self.phone_home = phone_home
        self.steps = steps
        self.secrets = secrets
        self.endpoints = endpoints
        self.platform_options = platform_options
        self.python = python  # runtime.python: the interpreter the startup task starts
        # The secret names the baked steps take from phone-home, computed by render.
        self.baked_secrets = baked_secrets or []
        self.inputs = inputs

    @property
    def role(self) -> str | None:
        return None if self.phone_home is None else str(self.phone_home["role"])

    @property
    def os(self) -> str:
        return str(self.image.get("os", ""))

    @property
    def attestation(self) -> str | None:
        """The evidence kind config fetches carry (docs/agent.md "Attestation"), or None."""
        if self.phone_home is None:
            return None
        setting = self.phone_home.get("attestation")
        if setting is None or setting == "off":
            return None
        if setting == "auto":
            return ATTESTATION_BY_PLATFORM.get(self.cloud)
        return str(setting)

    @property
    def cloud(self) -> str:
        """Where the image runs (`image.platform`, written by render): generic when absent."""
        return str(self.image.get("platform") or "generic")


_no_duplicates = no_duplicate_keys(ConfigError)


def _expect(cond: bool, where: str, what: str) -> None:
    if not cond:
        raise ConfigError(f"{where}: expected {what}")


def _phone_home(raw: Any) -> dict[str, Any] | None:
    if raw is None:
        return None
    _expect(isinstance(raw, dict), "phone_home", "an object or null")
    ph = {**PHONE_HOME_DEFAULTS, **raw}
    url = ph.get("url")
    if isinstance(url, str):
        url = [url]
    _expect(
        isinstance(url, list) and bool(url) and all(isinstance(u, str) and u for u in url),
        "phone_home.url",
        "a URL template or a non-empty list of them",
    )
    ph["url"] = url
    _expect(isinstance(ph.get("role"), str) and bool(ph["role"]), "phone_home.role", "a role name")
    keys = ph.get("trusted_keys")
    _expect(
        isinstance(keys, list) and bool(keys) and all(isinstance(k, str) for k in keys),
        "phone_home.trusted_keys",
        "a non-empty list of ed25519:... keys",
    )
    retry = {**RETRY_DEFAULTS, **(ph.get("retry") or {})}
    for name in ("initial", "max", "deadline"):
        if name in retry:
            _expect(is_duration(retry[name]), f"phone_home.retry.{name}", "a duration")
    ph["retry"] = retry
    _expect(is_duration(ph["timeout"]), "phone_home.timeout", "a duration")
    _expect(
        ph["on_unreachable"] in ("continue", "halt"),
        "phone_home.on_unreachable",
        "continue or halt",
    )
    # Absent: off (an agent.json rendered before #15); render writes the resolved kind.
    _expect(
        ph.get("attestation", "off") in ATTESTATION_SETTINGS,
        "phone_home.attestation",
        ", ".join(ATTESTATION_SETTINGS),
    )
    metadata_url = ph.get("metadata_url")
    _expect(
        metadata_url is None
        or (isinstance(metadata_url, str) and metadata_url.startswith(("http://", "https://"))),
        "phone_home.metadata_url",
        "an http(s) URL",
    )
    return ph


def load_config(path: Path) -> AgentConfig:
    """Read and check agent.json; ConfigError names what is wrong."""
    try:
        raw = json.loads(path.read_bytes().decode("utf-8"), object_pairs_hook=_no_duplicates)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except (UnicodeDecodeError, json.JSONDecodeError, ConfigError) as exc:
        raise ConfigError(f"{path}: not valid JSON: {exc}") from None
    try:
        return _build(path, raw)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None


def _build(path: Path, raw: Any) -> AgentConfig:
    _expect(isinstance(raw, dict), "agent.json", "a JSON object")
    _expect(raw.get("format", 1) == 1, "format", "1 (this agent reads format 1)")
    identity = raw.get("identity", list(IDENTITY_SOURCES))
    _expect(
        isinstance(identity, list) and bool(identity) and set(identity) <= set(IDENTITY_SOURCES),
        "identity",
        f"a non-empty list of {', '.join(IDENTITY_SOURCES)}",
    )
    secrets = raw.get("secrets") or {}
    _expect(
        isinstance(secrets, dict) and all(isinstance(v, str) for v in secrets.values()),
        "secrets",
        "an object of strings",
    )
    steps = raw.get("steps") or []
    _expect(isinstance(steps, list), "steps", "a list")
    answer_files = raw.get("answer_files") or []
    _expect(
        isinstance(answer_files, list) and all(isinstance(a, str) for a in answer_files),
        "answer_files",
        "a list of paths",
    )
    when = raw.get("delete_answer_files", "launch")
    _expect(when in ("launch", "done"), "delete_answer_files", "launch or done")
    variables = raw.get("variables") or {}
    _expect(isinstance(variables, dict), "variables", "an object")
    image = raw.get("image") or {}
    _expect(isinstance(image, dict), "image", "an object")
    # One of PLATFORMS; a name this agent does not know waits like `generic` (readiness.py)
    # rather than refusing to run at all.
    _expect(isinstance(image.get("platform", "generic"), str), "image.platform", "a name")
    endpoints = raw.get("endpoints") or {}
    _expect(isinstance(endpoints, dict), "endpoints", "an object")
    baked_secrets = raw.get("baked_secrets") or []
    _expect(
        isinstance(baked_secrets, list) and all(isinstance(n, str) for n in baked_secrets),
        "baked_secrets",
        "a list of secret names",
    )
    options = raw.get("platform_options") or {}
    _expect(isinstance(options, dict), "platform_options", "an object")
    runtime = raw.get("runtime") or {}
    _expect(
        isinstance(runtime, dict) and isinstance(runtime.get("python", ""), str),
        "runtime",
        'an object with "python", the path of python.exe',
    )
    inputs = _inputs(raw.get("inputs"))
    return AgentConfig(
        path=path,
        image=image,
        install_dir=str(raw.get("install_dir") or path.parent),
        identity=list(identity),
        variables=variables,
        keep_answer_files=bool(raw.get("keep_answer_files", False)),
        answer_files=answer_files,
        delete_answer_files=str(when),
        log_level=str(raw.get("log_level", "info")),
        phone_home=_phone_home(raw.get("phone_home")),
        steps=steps,
        secrets=secrets,
        endpoints=endpoints,
        platform_options=options,
        python=runtime.get("python") or None,
        baked_secrets=list(baked_secrets),
        inputs=inputs,
    )


def _inputs(raw: Any) -> dict[str, Any] | None:
    """agent.inputs as render wrote it (the spec's schema checked it); its shape again here,
    since the agent must not act on a hand-edited file it misreads."""
    if raw is None:
        return None
    from vmprep.agent.inputs import SOURCES

    _expect(isinstance(raw, dict), "inputs", "an object")
    sources = raw.get("sources")
    _expect(
        isinstance(sources, list) and bool(sources) and set(sources) <= set(SOURCES),
        "inputs.sources",
        f"a non-empty list of {', '.join(SOURCES)}",
    )
    keys = raw.get("keys")
    _expect(
        isinstance(keys, dict) and bool(keys) and all(isinstance(v, dict) for v in keys.values()),
        "inputs.keys",
        "an object of key declarations",
    )
    _expect(is_duration(raw.get("timeout", "2s")), "inputs.timeout", "a duration")
    return dict(raw)
