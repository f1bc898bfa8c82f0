"""The one exception tree of nemowatch, grouped by what the caller does about it.

::

    NemowatchError                  base; `retryable` says whether trying again can help
    ├── ConfigError                 fatal at start; on reload: keep the previous rules
    ├── TransientError              retry with backoff (network, 5xx, render pending)
    │   └── RateLimited             429: wait as asked, retry once
    ├── AuthError                   re-authenticate once, then fail
    ├── CreditsExhausted            pause the queue, keep every file, tell the user
    ├── MediaError                  unsupported, too large, empty, corrupt: fail fast
    │   └── SidecarError            a sidecar's instructions are invalid (file:line each)
    ├── SessionLost                 the engine forgot the session: open a new one, upload
    │                               again, and carry on from the job's checkpoint
    ├── EngineError                 the engine failed (FFmpeg exit code + stderr tail,
    │                               or the API's message)
    ├── LedgerError                 the job store cannot be opened or written: stop
    │   ├── LedgerDamaged           not a database, or pages unreadable: `ledger recover`
    │   ├── LedgerLost              deleted or replaced (while running, or since a daemon
    │   │                           last ran on the state directory): `ledger recover`
    │   ├── StateDirMissing         state_dir leads nowhere (a link to nothing, a file)
    │   ├── StateDirUnwritable      no permission, read-only filesystem
    │   └── LedgerIOError           disk full, I/O error: may pass
    └── OperatorError (operator.py) a command cannot do what was asked: say why, exit 1

Each error has the `exit_status` a command ends with when it stops on it: sysexits.h
values, one per fault an operator must fix. systemd's `RestartPreventExitStatus=` lists
those a restart cannot fix (the units in systemd/, the table in docs/systemd.md).

Foreign errors (OSError, subprocess, httpx) are translated once, at the boundary where
they happen, with ``raise ... from exc``. Messages never contain tokens or credentials.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# Exit statuses (sysexits.h). 1 is any other failure, 2 a usage error.
EX_FAILURE = 1
EX_DATAERR = 65  # the ledger is damaged
EX_NOINPUT = 66  # the ledger is missing where one is expected (deleted or replaced)
EX_OSFILE = 72  # state_dir leads nowhere: a link to nothing, a file where a folder should be
EX_CANTCREAT = 73  # state_dir or the ledger cannot be created or written (permissions)
EX_IOERR = 74  # reading or writing the ledger failed (disk full, I/O error): may pass
EX_CONFIG = 78  # the configuration is invalid

# What a restart cannot fix: the units' RestartPreventExitStatus= (a test keeps them equal).
RESTART_CANNOT_FIX = (EX_DATAERR, EX_NOINPUT, EX_OSFILE, EX_CANTCREAT, EX_CONFIG)


class NemowatchError(Exception):
    """Base of every error nemowatch raises on purpose."""

    retryable: bool = False
    exit_status: int = EX_FAILURE  # what a command that stops on it exits with

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint  # what the user can do about it, shown beside the message

    def __str__(self) -> str:
        return self.message


def kind(error: NemowatchError) -> str:
    """What kind of error it is, as the ledger, metrics and notifications name it: its
    class's name in snake case, less "Error" ("media", "engine", "rate_limited")."""
    name = type(error).__name__.removesuffix("Error") or "nemowatch"
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name).lower()


@dataclass(frozen=True)
class ConfigProblem:
    """One problem in one config or rule file."""

    file: str
    line: int | None
    path: str  # dotted location, e.g. "rules[2].edit.aspect"
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line is not None else self.file
        return f"{where}: {self.path}: {self.message}" if self.path else f"{where}: {self.message}"


class ConfigError(NemowatchError):
    """The configuration is invalid; `problems` lists every problem found, not just the first."""

    exit_status = EX_CONFIG

    def __init__(self, problems: list[ConfigProblem]) -> None:
        self.problems = list(problems)
        lines = "\n".join(f"  {problem}" for problem in self.problems)
        count = len(self.problems)
        noun = "problem" if count == 1 else "problems"
        super().__init__(f"invalid configuration ({count} {noun}):\n{lines}")


class TransientError(NemowatchError):
    """Trying again later can help. `retry_after` is the server's requested delay, if any."""

    retryable = True

    def __init__(
        self, message: str, *, retry_after: float | None = None, hint: str | None = None
    ) -> None:
        super().__init__(message, hint=hint)
        self.retry_after = retry_after


class RateLimited(TransientError):
    """Too many requests (HTTP 429): wait `retry_after` seconds, then try once more."""


class AuthError(NemowatchError):
    """Credentials were refused (after one attempt to renew them)."""


class CreditsExhausted(NemowatchError):
    """The account has no credits left: pause new work, keep the files."""

    retryable = True


class MediaError(NemowatchError):
    """The source file cannot be processed as it is (unsupported, empty, corrupt, too large)."""


class SidecarError(MediaError):
    """A sidecar (`clip.txt`, `clip.yaml`) beside a source cannot be used: `problems` lists
    each with its file and line. The job fails before any work; nothing is rendered."""

    def __init__(self, problems: list[ConfigProblem], *, hint: str | None = None) -> None:
        self.problems = list(problems)
        lines = "\n".join(f"  {problem}" for problem in self.problems)
        count = len(self.problems)
        noun = "problem" if count == 1 else "problems"
        super().__init__(f"invalid sidecar ({count} {noun}):\n{lines}", hint=hint)


class SessionLost(NemowatchError):
    """The engine no longer knows the job's session (expired or deleted on its side)."""

    retryable = True


class EngineError(NemowatchError):
    """The engine failed on a file it accepted (FFmpeg exit status, or the API's message)."""

    def __init__(self, message: str, *, retryable: bool = False, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.retryable = retryable


class LedgerError(NemowatchError):
    """The ledger cannot be opened or written (disk full, permissions, corrupt database)."""


class LedgerDamaged(LedgerError):
    """The ledger is not a database, or some of its pages cannot be read."""

    exit_status = EX_DATAERR


class LedgerLost(LedgerError):
    """The ledger is not where one is expected: deleted or replaced."""

    exit_status = EX_NOINPUT


class AlreadyClaimed(LedgerError):
    """Another daemon sharing the ledger recorded a job for the same file first."""


class LeaseLost(LedgerError):
    """Another daemon of the fleet adopted this job (this one's lease expired): this one
    must stop working on it and publish nothing (docs/fleet.md)."""


class StateDirMissing(LedgerError):
    """state_dir cannot be made: a link to nothing, or a file where a folder should be."""

    exit_status = EX_OSFILE


class StateDirUnwritable(LedgerError):
    """state_dir or the ledger in it cannot be created or written (permissions, read-only)."""

    exit_status = EX_CANTCREAT


class LedgerIOError(LedgerError):
    """Reading or writing the ledger failed (disk full, I/O error); it may pass."""

    exit_status = EX_IOERR
