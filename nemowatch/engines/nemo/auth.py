"""Which token the NemoVideo engine presents, and where an anonymous one is kept.

$NEMO_TOKEN wins (read from the environment mapping given, explicit > os.environ). Without
it, an anonymous token is requested once (`POST /api/auth/anonymous-token` with
`X-Client-Id`) and kept with its client id, user id and expiry in
`<state_dir>/nemo-auth.json`, mode 0600, because asking again is rate limited (one token
per client id per 7 days). It is renewed, with the same client id, an hour before it
expires and when the API refuses it; a token from $NEMO_TOKEN is never replaced.

The token never appears in a message, a log line or a repr.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import stat
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import structlog

from nemowatch.engines.nemo.errors import Account
from nemowatch.engines.nemo.replies import StoredToken, TokenReply, parse
from nemowatch.errors import AuthError, EngineError, NemowatchError

log = structlog.get_logger("nemowatch.nemo")

TOKEN_FILE = "nemo-auth.json"
ENV_TOKEN = "NEMO_TOKEN"
RENEW_BEFORE = timedelta(hours=1)  # renew a token this long before it expires
TOKEN_LIFETIME = timedelta(days=7)  # assumed when an answer has no usable `expires_at`

# asks the API for an anonymous token for a client id; returns the answer's `data`
RequestToken = Callable[[str], Awaitable[Any]]


@dataclass(frozen=True)
class Credentials:
    """The token to present and what is known about it."""

    token: str = field(repr=False)
    anonymous: bool
    user_id: str | None = None
    expires_at: datetime | None = None
    client_id: str | None = field(default=None, repr=False)

    @property
    def account(self) -> Account:
        return Account(user_id=self.user_id, anonymous=self.anonymous)

    def expiring(self, now: datetime) -> bool:
        """Whether it is time to renew (within RENEW_BEFORE of the expiry)."""
        return self.expires_at is not None and now >= self.expires_at - RENEW_BEFORE

    def expired(self, now: datetime) -> bool:
        return self.expires_at is not None and now >= self.expires_at


def parse_time(value: Any) -> datetime | None:
    """An ISO 8601 time (naive ones are UTC), or None."""
    if not isinstance(value, str) or not value.strip():
        return None
    try:
        parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def issued(data: Any, *, client_id: str, now: datetime) -> Credentials:
    """Credentials from the anonymous-token answer's `data`. Pure."""
    reply = parse(TokenReply, data, endpoint="anonymous-token")
    return Credentials(
        token=reply.token,
        anonymous=True,
        user_id=reply.user_id,
        expires_at=parse_time(reply.expires_at) or now + TOKEN_LIFETIME,
        client_id=client_id,
    )


class TokenFile:
    """`nemo-auth.json`: client id, token, user id and expiry, readable by the owner only."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def load(self) -> StoredToken:
        """What the file holds; nothing when it is missing or unreadable (logged)."""
        try:
            mode = self.path.stat().st_mode
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return StoredToken()
        except OSError as error:
            log.warning("nemo.token.unreadable", path=str(self.path), error=error.strerror)
            return StoredToken()
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            with contextlib.suppress(OSError):
                os.chmod(self.path, 0o600)
            log.warning("nemo.token.permissions_fixed", path=str(self.path))
        try:
            return StoredToken.model_validate_json(text)
        except ValueError:  # not JSON, or not the object written here
            log.warning("nemo.token.corrupt", path=str(self.path))
            return StoredToken()

    def save(self, credentials: Credentials) -> None:
        """Replace the file atomically; it is created with mode 0600, never wider."""
        stored = StoredToken(
            client_id=credentials.client_id,
            token=credentials.token,
            user_id=credentials.user_id,
            expires_at=credentials.expires_at.isoformat() if credentials.expires_at else None,
        )
        self.write(stored)

    def write(self, stored: StoredToken) -> None:
        temporary = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
                handle.write(stored.model_dump_json())
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temporary, self.path)
        except OSError as error:
            with contextlib.suppress(OSError):
                temporary.unlink()
            raise EngineError(
                f"could not save the NemoVideo token in {self.path}: {error.strerror}",
                retryable=True,
            ) from error


class Authenticator:
    """Hands out the current credentials; renews an anonymous token when asked to."""

    def __init__(
        self,
        *,
        state_dir: Path,
        environ: Mapping[str, str],
        request_token: RequestToken,
        now: Callable[[], datetime],
        new_client_id: Callable[[], str] = lambda: str(uuid.uuid4()),
    ) -> None:
        self._file = TokenFile(state_dir / TOKEN_FILE)
        self._request_token = request_token
        self._now = now
        self._new_client_id = new_client_id
        self._lock = asyncio.Lock()
        self._current: Credentials | None = None
        self._renewal_tried: datetime | None = None  # the expiry a renewal was tried for
        token = (environ.get(ENV_TOKEN) or "").strip()
        self._environment = Credentials(token=token, anonymous=False) if token else None

    @property
    def from_environment(self) -> bool:
        return self._environment is not None

    async def current(self) -> Credentials:
        """The credentials to present now: $NEMO_TOKEN, else the kept anonymous token
        (requested the first time, renewed when it is about to expire)."""
        if self._environment is not None:
            return self._environment
        async with self._lock:
            if self._current is None:
                self._current = self._loaded()
            current = self._current
            if current is None:
                self._current = await self._issue(self._client_id())
                return self._current
            now = self._now()
            if current.expiring(now) and current.expires_at != self._renewal_tried:
                # once per expiry: a fresh token that expires as soon must not be renewed on
                # every call (asking is rate limited); a refusal renews it anyway
                self._renewal_tried = current.expires_at
                try:
                    current = await self._issue(self._client_id())
                except NemowatchError as error:
                    if current.expired(now):
                        raise
                    # the old token still works for a while; a refusal will renew it
                    log.warning("nemo.token.renewal_failed", error=str(error))
                self._current = current
                self._renewal_tried = current.expires_at
            return current

    async def renew(self, refused: Credentials) -> Credentials:
        """New credentials after the API refused `refused` (an auth error): once per
        refusal. A token from $NEMO_TOKEN is never replaced: that is the user's to fix."""
        if self._environment is not None:
            raise self.refused()
        async with self._lock:
            if self._current is not None and self._current.token != refused.token:
                return self._current  # another request renewed it meanwhile
            log.info("nemo.token.refused", user_id=refused.user_id)
            self._current = await self._issue(self._client_id())
            return self._current

    def learn_user_id(self, user_id: str) -> None:
        """The account's id as a session or state answer gave it, for an anonymous token
        whose own answer had none: the registration link names it (`?bind=<user_id>`)."""
        current = self._current
        if self._environment is not None or current is None or current.user_id:
            return
        self._current = replace(current, user_id=user_id)
        self._file.save(self._current)
        log.info("nemo.token.user_id", user_id=user_id, source="session")

    def refused(self) -> AuthError:
        """The error for credentials refused even after renewing them."""
        if self._environment is not None:
            return AuthError(
                "NEMO_TOKEN was refused: set a valid token",
                hint="get a token from your NemoVideo account and set NEMO_TOKEN, or unset"
                " it to use an anonymous token",
            )
        return AuthError(
            "NemoVideo refused a freshly issued anonymous token",
            hint=f"try again later, or set {ENV_TOKEN} to a token from your NemoVideo account",
        )

    def _loaded(self) -> Credentials | None:
        stored = self._file.load()
        if not stored.token or not stored.client_id:
            return None
        return Credentials(
            token=stored.token,
            anonymous=True,
            user_id=stored.user_id,
            expires_at=parse_time(stored.expires_at),
            client_id=stored.client_id,
        )

    def _client_id(self) -> str:
        """The kept client id (tokens are limited per client id), made once."""
        if self._current is not None and self._current.client_id:
            return self._current.client_id
        kept = self._file.load().client_id
        if kept:
            return kept
        client_id = self._new_client_id()
        # kept before asking, so that a crash does not lose it
        self._file.write(StoredToken(client_id=client_id))
        return client_id

    async def _issue(self, client_id: str) -> Credentials:
        log.info("nemo.token.requested")
        credentials = issued(
            await self._request_token(client_id), client_id=client_id, now=self._now()
        )
        self._file.save(credentials)
        log.info(
            "nemo.token.issued",
            user_id=credentials.user_id,
            expires_at=credentials.expires_at.isoformat() if credentials.expires_at else None,
        )
        return credentials
