"""The running service's state: repository + issuer (swapped whole on reload), store, tokens."""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from vmprep.errors import InputError
from vmprep.server.documents import Issuer
from vmprep.server.keys import SigningKey
from vmprep.server.repo import Repository, RepositoryError, fingerprint, load_repository
from vmprep.server.store import Store
from vmprep.server.writer import ReportWriter

if TYPE_CHECKING:
    from vmprep.server.attestation import Attestor

log = logging.getLogger("vmprep.server")
_HEX = re.compile(r"^[0-9a-f]{64}$")


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Tokens:
    """SHA-256 hex digests of the accepted bearer tokens. No fleet token: fetching and
    reporting are open (say so in the log); no admin token: listing is refused.

    `fleet_roles[i]`: the roles fleet token `i` may fetch configs for (None: any). With the
    role chosen at deploy time (docs/inputs.md), an image's token can be limited to the
    roles that image may take, so a copy of it cannot ask for another role's secrets."""

    fleet: tuple[str, ...] = ()
    admin: tuple[str, ...] = ()
    fleet_roles: tuple[frozenset[str] | None, ...] = ()

    @staticmethod
    def _match(token: str, digests: tuple[str, ...]) -> int | None:
        presented = hash_token(token)
        found = None
        for i, digest in enumerate(digests):  # no early exit: the time says nothing of which
            if hmac.compare_digest(presented, digest):
                found = i
        return found

    @classmethod
    def _matches(cls, token: str, digests: tuple[str, ...]) -> bool:
        return cls._match(token, digests) is not None

    def is_fleet(self, token: str) -> bool:
        return self._matches(token, self.fleet)

    def may_fetch(self, token: str, role: str) -> bool:
        """Whether a fleet token may fetch `role`'s configs (an admin token may fetch any)."""
        i = self._match(token, self.fleet)
        if i is None:
            return self.is_admin(token)
        roles = self.fleet_roles[i] if i < len(self.fleet_roles) else None
        return roles is None or role in roles

    def is_admin(self, token: str) -> bool:
        return self._matches(token, self.admin)


def load_tokens(path: Path) -> Tokens:
    """A tokens file: `fleet <sha256 hex> [roles=a,b]` / `admin <sha256 hex>` lines,
    `#` comments."""
    fleet: list[str] = []
    admin: list[str] = []
    fleet_roles: list[frozenset[str] | None] = []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: cannot read the tokens file: {exc}") from None
    for n, line in enumerate(lines, 1):
        words = line.split("#", 1)[0].split()
        if not words:
            continue
        roles = _roles(words[2]) if len(words) == 3 and words[0] == "fleet" else None
        if (
            len(words) not in (2, 3)
            or words[0] not in ("fleet", "admin")
            or not _HEX.match(words[1])
            or (len(words) == 3 and not roles)
        ):
            raise InputError(
                f"{path}:{n}:1: expected `fleet <sha256 hex> [roles=NAME,...]` or "
                "`admin <sha256 hex>`",
                hint='hash a token with: printf %s "$TOKEN" | sha256sum',
            )
        if words[0] == "fleet":
            fleet.append(words[1])
            fleet_roles.append(roles)
        else:
            admin.append(words[1])
    return Tokens(tuple(fleet), tuple(admin), tuple(fleet_roles))


_ROLE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


def _roles(word: str) -> frozenset[str] | None:
    """`roles=a,b` -> {a, b}; None when the word is not that form."""
    name, _, listed = word.partition("=")
    roles = listed.split(",")
    if name != "roles" or not all(_ROLE.fullmatch(r) for r in roles):
        return None
    return frozenset(roles)


@dataclass
class Service:
    configs: Path
    store: Store
    keys: list[SigningKey]
    tokens: Tokens = field(default_factory=Tokens)
    reports_only: bool = False  # `serve --reports-only`: config fetches are answered 404
    draining: bool = False  # a graceful shutdown has begun: /readyz answers 503
    shared: bool = False  # other processes issue from the same store (vmprep.server.documents)
    attestor: Attestor | None = None  # None: no trust anchors, every attestation fails
    issuer: Issuer = field(init=False)
    writer: ReportWriter = field(init=False)

    def __post_init__(self) -> None:
        self.issuer = Issuer(
            load_repository(self.configs), self.store, self.keys, shared=self.shared
        )
        self.writer = ReportWriter(self.store)

    @property
    def repo(self) -> Repository:
        return self.issuer.repo

    def changed(self) -> bool:
        """True when a file changed, or when the repository cannot be read (the reload that
        follows then says why, and keeps the last good repository)."""
        try:
            return fingerprint(self.configs, self.repo.secret_files) != self.repo.fingerprint
        except InputError:
            return True

    def attestation_warnings(self) -> list[str]:
        """What an operator should hear about the roles' attestation (docs/attestation.md)."""
        out = []
        for role in sorted(self.repo.roles.values(), key=lambda r: r.name):
            if role.attestation == "off":
                continue
            if self.attestor is None:
                out.append(
                    f"role {role.name!r} has attestation: {role.attestation} but no "
                    "--attestation-anchors is configured: every attestation is refused"
                )
            elif not role.attestation_allow:
                out.append(
                    f"role {role.name!r} has no attestation_allow: any VM of any subscription, "
                    "account or project can attest for it (docs/attestation.md)"
                )
        return out

    def warn_attestation(self) -> None:
        for warning in self.attestation_warnings():
            log.warning("%s", warning)

    def reload(self) -> bool:
        """Load the repository again; on any problem keep serving the last good one."""
        try:
            repo = load_repository(self.configs)
        except RepositoryError as exc:
            log.error("the config repository has problems; still serving the previous one")
            for problem in exc.problems:
                log.error("%s", problem)
            return False
        except InputError as exc:
            log.error("cannot reload the config repository: %s", exc)
            return False
        dropped = sorted(set(self.repo.roles) - set(repo.roles))
        self.issuer = Issuer(
            repo, self.store, self.keys, shared=self.shared
        )  # one assignment: requests see old or new
        log.info("config repository reloaded: %d role(s)", len(repo.roles))
        self.warn_attestation()
        if dropped:  # on purpose or not, say so: their instances now get "no such role"
            log.warning("roles no longer served: %s", ", ".join(dropped))
        return True
