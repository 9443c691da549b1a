"""The running service's state: repository + issuer (swapped whole on reload), store, tokens."""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path

from vmprep.errors import InputError
from vmprep.server.documents import Issuer
from vmprep.server.keys import SigningKey
from vmprep.server.repo import Repository, RepositoryError, fingerprint, load_repository
from vmprep.server.store import Store
from vmprep.server.writer import ReportWriter

log = logging.getLogger("vmprep.server")
_HEX = re.compile(r"^[0-9a-f]{64}$")


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Tokens:
    """SHA-256 hex digests of the accepted bearer tokens. No fleet token: fetching and
    reporting are open (say so in the log); no admin token: listing is refused."""

    fleet: tuple[str, ...] = ()
    admin: tuple[str, ...] = ()

    @staticmethod
    def _matches(token: str, digests: tuple[str, ...]) -> bool:
        presented = hash_token(token)
        ok = False
        for digest in digests:  # no early exit: the time taken says nothing about which
            ok |= hmac.compare_digest(presented, digest)
        return ok

    def is_fleet(self, token: str) -> bool:
        return self._matches(token, self.fleet)

    def is_admin(self, token: str) -> bool:
        return self._matches(token, self.admin)


def load_tokens(path: Path) -> Tokens:
    """A tokens file: `fleet <sha256 hex>` / `admin <sha256 hex>` lines, `#` comments."""
    fleet: list[str] = []
    admin: list[str] = []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: cannot read the tokens file: {exc}") from None
    for n, line in enumerate(lines, 1):
        words = line.split("#", 1)[0].split()
        if not words:
            continue
        if len(words) != 2 or words[0] not in ("fleet", "admin") or not _HEX.match(words[1]):
            raise InputError(
                f"{path}:{n}:1: expected `fleet <sha256 hex>` or `admin <sha256 hex>`",
                hint='hash a token with: printf %s "$TOKEN" | sha256sum',
            )
        (fleet if words[0] == "fleet" else admin).append(words[1])
    return Tokens(tuple(fleet), tuple(admin))


@dataclass
class Service:
    configs: Path
    store: Store
    keys: list[SigningKey]
    tokens: Tokens = field(default_factory=Tokens)
    issuer: Issuer = field(init=False)
    writer: ReportWriter = field(init=False)

    def __post_init__(self) -> None:
        self.issuer = Issuer(load_repository(self.configs), self.store, self.keys)
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
        self.issuer = Issuer(repo, self.store, self.keys)  # one assignment: requests see old or new
        log.info("config repository reloaded: %d role(s)", len(repo.roles))
        if dropped:  # on purpose or not, say so: their instances now get "no such role"
            log.warning("roles no longer served: %s", ", ".join(dropped))
        return True
