"""InstanceConfig documents: what a (role, instance) gets, and its signed bytes.

Serials come from the store's single counter, so they only ever grow, for every instance,
across restarts, repository edits and targets (role-wide or per instance). A document is
re-issued (new serial) when its content changes, or when the issued one has used up half
its ttl: so every served document is valid for at least ttl/2 more (plus the agent's five
minutes of grace), and the signature is computed once per (content, issue), not per request.
The bytes are a pure function of (content, serial, issued_at, expires_at) and Ed25519 is
deterministic, so after a restart the stored issue yields the same bytes and signature.
"""

from __future__ import annotations

import fnmatch
import hashlib
import hmac
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from vmprep.protocol.canonical import canonical_json
from vmprep.protocol.timestamps import format_rfc3339
from vmprep.server.keys import SigningKey, signature_header
from vmprep.server.repo import Override, Repository, Role
from vmprep.server.store import Issue, Store
from vmprep.spec.rules_secrets import phone_home_secrets

ROLE_TARGET = "_role"  # the role-wide document's target, as in the static layout


class MissingSecrets(Exception):
    """An agent asked for secrets its role does not declare (docs/protocol.md)."""

    def __init__(self, role: str, names: list[str]) -> None:
        listed = ", ".join(repr(n) for n in names)
        super().__init__(
            f"role {role!r} does not declare secret(s) {listed}, which this instance's baked "
            "steps need: declare them under the role's `secrets:`"
        )
        self.names = names


@dataclass(frozen=True)
class Content:
    """Everything in a document but serial and times. `digest` identifies the version."""

    role: str
    instance_id: str | None
    ttl: int
    variables: dict[str, Any]
    secrets: dict[str, str]
    steps: list[dict[str, Any]]
    digest: str

    @property
    def target(self) -> str:
        return self.instance_id or ROLE_TARGET


def declared_secrets(role: Role, override: Override | None) -> set[str]:
    """The secret names a document for this target may carry."""
    return set(role.secrets) | set(override.secrets if override is not None else ())


def build_content(
    role: Role,
    override: Override | None,
    instance_id: str | None,
    digest_key: bytes,
    wanted: frozenset[str] | None = frozenset(),
) -> Content:
    """`wanted`: secret names the agent's baked steps need (docs/protocol.md), delivered
    besides those the document's own steps use; None for every declared one (publish)."""
    variables, secrets, steps = dict(role.variables), dict(role.secrets), list(role.steps)
    if override is not None:
        variables.update(override.variables)
        secrets.update(override.secrets)
        steps += override.steps  # after the role's steps; ids never clash (checked on load)
    if wanted is not None:
        used = phone_home_secrets(steps) | wanted
        secrets = {k: v for k, v in secrets.items() if k in used}
    body = {
        "target": [role.name, instance_id],
        "ttl": role.ttl,
        "variables": variables,
        "secrets": secrets,
        "steps": steps,
    }
    # Keyed, so that the digest kept in the store says nothing about a secret's value.
    digest = hmac.new(digest_key, canonical_json(body), hashlib.sha256).hexdigest()
    return Content(role.name, instance_id, role.ttl, variables, secrets, steps, digest)


def find_override(
    role: Role, instance_id: str, mac: str | None, computer_name: str | None
) -> Override | None:
    """instance_id matches first, then mac, then the first computer-name glob (any case)."""
    by_kind: dict[str, Override] = {}
    for ov in role.overrides:
        if ov.kind == "instance_id" and ov.pattern == instance_id:
            return ov
        if ov.kind == "mac" and ov.pattern in (instance_id, (mac or "").lower()):
            by_kind.setdefault("mac", ov)
        if (
            ov.kind == "name"
            and computer_name
            and fnmatch.fnmatchcase(computer_name.upper(), ov.pattern.upper())
        ):
            by_kind.setdefault("name", ov)
    return by_kind.get("mac") or by_kind.get("name")


def document_bytes(content: Content, issue: Issue) -> bytes:
    target: dict[str, str] = {"role": content.role}
    if content.instance_id is not None:
        target["instance_id"] = content.instance_id
    doc: dict[str, Any] = {
        "apiVersion": "vmprep/v1",
        "kind": "InstanceConfig",
        "serial": issue.serial,
        "issued_at": format_rfc3339(issue.issued_at),
        "expires_at": format_rfc3339(issue.expires_at),
        "target": target,
        "variables": content.variables,
        "steps": content.steps,
    }
    if content.secrets:
        doc["secrets"] = content.secrets
    return canonical_json(doc)


def digest_key(keys: list[SigningKey]) -> bytes:
    """A key for content digests derived from the signing keys (a new key re-issues)."""
    h = hashlib.sha256(b"vmprep content digest v1")
    for k in sorted(keys, key=lambda k: k.key_id):
        h.update(k.private.private_bytes_raw())
    return h.digest()


@dataclass(frozen=True)
class Signed:
    body: bytes
    signature: str
    serial: int
    first_serial: int  # the first serial of this content version
    refresh_at: float
    has_secrets: bool


class Issuer:
    """Signed documents for one repository generation, cached per (role, target)."""

    def __init__(
        self,
        repo: Repository,
        store: Store,
        keys: list[SigningKey],
        clock: Callable[[], float] = time.time,
        *,
        shared: bool = False,
    ) -> None:
        self.repo, self.store, self.keys, self.clock = repo, store, keys, clock
        # Several processes issue from this store (replicas, --workers): a cached document is
        # served only while the store's current serial for its target is still the cached
        # one, so no process serves a serial older than one another process has issued.
        self.shared = shared
        self.digest_key = digest_key(keys)
        self._cache: dict[tuple[str, str], tuple[str, Signed]] = {}
        self._roles: dict[str, Content] = {
            name: build_content(role, None, None, self.digest_key)
            for name, role in repo.roles.items()
        }
        self._contents: dict[tuple[str, str | None, int, frozenset[str]], Content] = {}
        self._lock = threading.Lock()

    def content(
        self,
        role: str,
        instance_id: str,
        mac: str | None = None,
        name: str | None = None,
        wanted: frozenset[str] = frozenset(),
    ) -> Content | None:
        """What `instance_id` gets, or None when nothing is configured for the role.
        `wanted`: the secrets its baked steps ask for; MissingSecrets if any is not declared."""
        r = self.repo.roles.get(role)
        if r is None:
            return None
        ov = None if instance_id == ROLE_TARGET else find_override(r, instance_id, mac, name)
        missing = wanted - declared_secrets(r, ov)
        if missing:
            raise MissingSecrets(role, sorted(missing))
        if ov is None and not wanted:
            return self._roles[role]
        target = None if ov is None else instance_id
        key = (role, target, id(ov), wanted)
        cached = self._contents.get(key)
        if cached is None:
            cached = build_content(r, ov, target, self.digest_key, wanted)
            self._contents[key] = cached
        return cached

    def signed(self, content: Content) -> Signed:
        key = (content.role, content.target)
        now = self.clock()
        hit = self._cache.get(key)
        if (
            hit is not None
            and hit[0] == content.digest
            and now < hit[1].refresh_at
            and (
                not self.shared
                or self.store.current_serial(content.role, content.target) == hit[1].serial
            )
        ):
            return hit[1]
        with self._lock:
            issue = self.store.issue(content.role, content.target, content.digest, content.ttl, now)
            body = document_bytes(content, issue)
            signed = Signed(
                body,
                signature_header(self.keys, body),
                issue.serial,
                issue.first_serial,
                issue.issued_at + content.ttl / 2,
                bool(content.secrets),
            )
            self._cache[key] = (content.digest, signed)
        return signed

    def is_current(self, last_serial: int, content: Content, signed: Signed) -> bool:
        """True when `last_serial` was issued for this target with this very content."""
        if not signed.first_serial <= last_serial <= signed.serial:
            return False
        return self.store.issued_for(last_serial) == (content.role, content.target, content.digest)
