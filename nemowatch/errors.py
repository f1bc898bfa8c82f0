"""The one exception tree of nemowatch, grouped by what the caller does about it.

::

    NemowatchError                  base; `retryable` says whether trying again can help
    ├── ConfigError                 fatal at start; on reload: keep the previous rules
    ├── TransientError              retry with backoff (network, 5xx, render pending)
    │   └── RateLimited             429: wait as asked, retry once
    ├── AuthError                   re-authenticate once, then fail
    ├── CreditsExhausted            pause the queue, keep every file, tell the user
    ├── MediaError                  unsupported, too large, empty, corrupt: fail fast
    ├── SessionLost                 the engine forgot the session: open a new one, upload
    │                               again, and carry on from the job's checkpoint
    ├── EngineError                 the engine failed (FFmpeg exit code + stderr tail,
    │                               or the API's message)
    ├── LedgerError (ledger.py)     the job store cannot be opened or written: stop
    └── OperatorError (operator.py) a command cannot do what was asked: say why, exit 1

Foreign errors (OSError, subprocess, httpx) are translated once, at the boundary where
they happen, with ``raise ... from exc``. Messages never contain tokens or credentials.
"""

from __future__ import annotations

from dataclasses import dataclass


class NemowatchError(Exception):
    """Base of every error nemowatch raises on purpose."""

    retryable: bool = False

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint  # what the user can do about it, shown beside the message

    def __str__(self) -> str:
        return self.message


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


class SessionLost(NemowatchError):
    """The engine no longer knows the job's session (expired or deleted on its side)."""

    retryable = True


class EngineError(NemowatchError):
    """The engine failed on a file it accepted (FFmpeg exit status, or the API's message)."""

    def __init__(self, message: str, *, retryable: bool = False, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.retryable = retryable
