"""Deleting the answer files, which hold the administrator's (and other) passwords.

Windows caches the answer file Setup used in `%WINDIR%\\Panther` and removes only some
secrets from it: "the cached answer file ... may contain sensitive information", so delete
it when Setup is done (Microsoft, best practices for authoring answer files:
https://learn.microsoft.com/windows-hardware/customize/desktop/wsim/best-practices-for-authoring-answer-files).
The agent deletes them as soon as it starts (`launch`, and every `run`), so an instance whose
run fails or halts does not keep them; render asks for the end of the run instead
(`delete_answer_files: "done"`) when the spec's automatic logon or FirstLogonCommands still
need them at the first logon. `keep_answer_files` keeps them.
"""

from __future__ import annotations

import fnmatch
import os

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing is not imported at run time: it costs start-up time
    from vmprep.agent.config import AgentConfig
    from vmprep.agent.logs import Log

AT_LAUNCH, WHEN_DONE = "launch", "done"


def expand(pattern: str) -> list[str]:
    """The files a path names; `*`/`?` in its last component match (case-insensitively on
    Windows, where fnmatch folds case), e.g. `C:\\Windows\\Panther\\unattend*.xml`."""
    folder, name = os.path.split(pattern)
    if not any(c in name for c in "*?["):
        return [pattern]
    try:
        names = sorted(os.listdir(folder))
    except OSError:
        return []
    return [os.path.join(folder, n) for n in names if fnmatch.fnmatch(n, name)]


def delete_answer_files(patterns: list[str], log: Log) -> list[str]:
    """Delete every file the patterns name; log each; return what was deleted."""
    deleted = []
    for pattern in patterns:
        for path in expand(pattern):
            try:
                os.remove(path)
            except FileNotFoundError:
                continue
            except OSError as exc:
                log.error(f"cannot delete answer file {path}: {exc}")
                continue
            log.info(f"deleted answer file {path}")
            deleted.append(path)
    return deleted


def delete_early_answer_files(cfg: AgentConfig, log: Log) -> None:
    """At start (`launch`, `run`): unless kept, or needed until the run is done."""
    if not cfg.keep_answer_files and cfg.delete_answer_files == AT_LAUNCH:
        delete_answer_files(cfg.answer_files, log)
