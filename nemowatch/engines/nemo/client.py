"""The HTTP side of the NemoVideo engine: one `httpx.AsyncClient`, the headers every call
carries, the token renewed once on refusal, answers translated by `errors`, and the retry
policy of each kind of call, declared once below as data.

Two clients: `api` (base URL, token and attribution headers) and `plain` (no headers at
all) for the rendered video's URL, which must not receive the token.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable, Mapping
from contextlib import nullcontext
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from types import MappingProxyType
from typing import Any, TypeVar

import httpx
from tenacity import AsyncRetrying

from nemowatch.config import NemoSettings
from nemowatch.engines.nemo import errors
from nemowatch.engines.nemo.auth import Authenticator, Credentials
from nemowatch.errors import AuthError
from nemowatch.retry import PATIENCE, RetryPolicy, Sleep, retrying

T = TypeVar("T")


class CallKind(StrEnum):
    """The kinds of call, each with its retry policy in POLICIES."""

    TOKEN = "token"  # POST /api/auth/anonymous-token
    SESSION = "session"  # POST /api/tasks/me/with-session/nemo_agent
    UPLOAD = "upload"  # POST /api/upload-video/...: each attempt restarts the file's stream
    EDIT = "edit"  # POST /run_sse, until the stream starts (only when it never arrived)
    STATE = "state"  # GET /api/state/.../latest
    RENDER_SUBMIT = "render_submit"  # POST /api/render/proxy/lambda, the same id each time
    RENDER_POLL = "render_poll"  # GET /api/render/proxy/lambda/<id>
    DOWNLOAD = "download"  # poll for a fresh link, then GET it
    DOWNLOAD_LINK = "download_link"  # that poll: once, the download's own retries retry it
    CREDITS = "credits"  # GET /api/credits/balance/simple


# What the wire needs, per kind of call. A 429 is retried once (after the wait it asks for,
# if no longer than 5 min); the other transient errors 1 s, 2 s, 4 s ... apart, and the calls
# a job makes sit out an outage of up to PATIENCE. Reading the balance (the daemon's credits
# poll) does not: the next poll is the retry.
POLICIES: Mapping[CallKind, RetryPolicy] = MappingProxyType(
    {
        CallKind.TOKEN: RetryPolicy(attempts=3, patience=PATIENCE),
        CallKind.SESSION: RetryPolicy(attempts=3, patience=PATIENCE),
        CallKind.UPLOAD: RetryPolicy(attempts=3, patience=PATIENCE),
        CallKind.EDIT: RetryPolicy(attempts=3, patience=PATIENCE),
        CallKind.STATE: RetryPolicy(attempts=5, patience=PATIENCE),
        CallKind.RENDER_SUBMIT: RetryPolicy(attempts=3, patience=PATIENCE),
        CallKind.RENDER_POLL: RetryPolicy(attempts=5, patience=PATIENCE),
        CallKind.DOWNLOAD: RetryPolicy(attempts=3, patience=PATIENCE),
        CallKind.DOWNLOAD_LINK: RetryPolicy(attempts=1, rate_limit_retries=0),
        CallKind.CREDITS: RetryPolicy(attempts=3),
    }
)


def platform_name(system: str) -> str:
    """X-Skill-Platform for "auto": sys.platform as linux / darwin / windows. Pure."""
    lowered = system.lower()
    if lowered.startswith("linux"):
        return "linux"
    if lowered.startswith("darwin"):
        return "darwin"
    if lowered.startswith(("win", "cygwin", "msys")):
        return "windows"
    return lowered or "unknown"


def skill_headers(settings: NemoSettings, *, system: str) -> dict[str, str]:
    """The attribution headers every request carries (without them exports hit 402)."""
    platform = settings.skill_platform
    return {
        "X-Skill-Source": settings.skill_source,
        "X-Skill-Version": settings.skill_version,
        "X-Skill-Platform": platform_name(system) if platform == "auto" else platform,
    }


@dataclass(frozen=True)
class Authorized:
    """What one attempt of a call presents: the headers, and whose they are."""

    headers: Mapping[str, str]
    credentials: Credentials

    @property
    def account(self) -> errors.Account:
        return self.credentials.account


class NemoClient:
    """Requests to the NemoVideo API, authorised, retried per POLICIES, translated."""

    def __init__(
        self,
        settings: NemoSettings,
        *,
        state_dir: Path,
        environ: Mapping[str, str],
        sleep: Sleep = asyncio.sleep,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        transport: httpx.AsyncBaseTransport | None = None,
        system: str = sys.platform,
        patience: float = PATIENCE,
    ) -> None:
        """`patience` caps the outage the calls that have one wait out (tests: 0)."""
        self.settings = settings
        self.patience = patience
        self.sleep = sleep
        self.now = now
        timeout = httpx.Timeout(settings.request_timeout)
        self.api = httpx.AsyncClient(
            base_url=settings.base_url,
            headers=skill_headers(settings, system=system),
            timeout=timeout,
            transport=transport,
        )
        # the rendered video's URL: no token, no attribution, redirects followed
        self.plain = httpx.AsyncClient(timeout=timeout, transport=transport, follow_redirects=True)
        self.auth = Authenticator(
            state_dir=state_dir, environ=environ, request_token=self._anonymous_token, now=now
        )

    def retrying(self, kind: CallKind) -> AsyncRetrying:
        """The one retry layer of a call of this kind (asking for a token included)."""
        policy = POLICIES[kind]
        policy = replace(policy, patience=min(policy.patience, self.patience))
        return retrying(policy, what=kind.value, sleep=self.sleep)

    async def call(self, kind: CallKind, operation: Callable[[Authorized], Awaitable[T]]) -> T:
        """Run `operation` with the current credentials, retried per the kind's policy."""
        async for attempt in self.retrying(kind):
            with attempt:
                return await self.authorized(operation)
        raise AssertionError("unreachable: tenacity reraises the last error")

    async def authorized(self, operation: Callable[[Authorized], Awaitable[T]]) -> T:
        """Run `operation` once; when the token is refused, renew it and run it once more."""
        credentials = await self.auth.current()
        try:
            return await operation(self._authorized(credentials))
        except AuthError:
            renewed = await self.auth.renew(credentials)
        try:
            return await operation(self._authorized(renewed))
        except AuthError as error:
            raise self.auth.refused() from error

    async def account(self) -> errors.Account:
        """Whose credits and sessions these are (asks for a token when there is none)."""
        async for attempt in self.retrying(CallKind.TOKEN):
            with attempt:
                return (await self.auth.current()).account
        raise AssertionError("unreachable: tenacity reraises the last error")

    async def request_json(
        self,
        kind: CallKind,
        method: str,
        path: str,
        *,
        what: str,
        json: Any = None,
        files: Callable[[], Any] | None = None,
        timeout: httpx.Timeout | None = None,
    ) -> Any:
        """The data of an API answer, envelopes unwrapped, errors translated and retried.

        `files` is a factory of an async context manager yielding httpx `files=`: each
        attempt opens the file again, so a retried upload restarts its stream.
        """

        async def once(authorized: Authorized) -> Any:
            call = self.describe(what, authorized)
            try:
                async with files() if files is not None else nullcontext() as opened:
                    response = await self.api.request(
                        method,
                        path,
                        json=json,
                        files=opened,
                        headers=dict(authorized.headers),
                        timeout=timeout or httpx.USE_CLIENT_DEFAULT,
                    )
            except httpx.HTTPError as error:
                raise errors.from_transport(error, call) from error
            return errors.check(response, call, now=self.now())

        return await self.call(kind, once)

    def describe(self, what: str, authorized: Authorized | None = None) -> errors.Call:
        """The context `errors` needs: what was done, for whom, which text to scrub."""
        if authorized is None:
            return errors.Call(what=what)
        return errors.Call(
            what=what,
            account=authorized.account,
            secrets=(authorized.credentials.token,),
        )

    async def aclose(self) -> None:
        await self.api.aclose()
        await self.plain.aclose()

    def _authorized(self, credentials: Credentials) -> Authorized:
        return Authorized(
            headers={"Authorization": f"Bearer {credentials.token}"}, credentials=credentials
        )

    async def _anonymous_token(self, client_id: str) -> Any:
        """POST /api/auth/anonymous-token with X-Client-Id, no body, no Authorization.
        Tried once: it runs inside the retry layer of the call that needed a token."""
        call = errors.Call(what="get an anonymous token", token_request=True)
        try:
            response = await self.api.post(
                "/api/auth/anonymous-token", headers={"X-Client-Id": client_id}
            )
        except httpx.HTTPError as error:
            raise errors.from_transport(error, call) from error
        return errors.check(response, call, now=self.now())
