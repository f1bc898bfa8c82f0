"""Retry policy, declared once as data: what is retried, how often, with what backoff.

Only `TransientError` is retried; a server's requested delay (Retry-After) wins over the
exponential schedule, up to MAX_RETRY_AFTER: a longer one fails the step at once. Tests
pass `sleep=` a recorder, so no test waits for real.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential,
)

from nemowatch.errors import TransientError

T = TypeVar("T")

Sleep = Callable[[float], Awaitable[None]]

_EXPONENTIAL = wait_exponential(multiplier=1.0, min=1.0, max=60.0)
MAX_RETRY_AFTER = 300.0  # seconds: a server asking for longer fails the step instead


def worth_waiting(error: BaseException) -> bool:
    """A transient error whose requested delay (if any) is one a job can sit out."""
    if not isinstance(error, TransientError):
        return False
    return error.retry_after is None or error.retry_after <= MAX_RETRY_AFTER


def wait_transient(state: RetryCallState) -> float:
    """Retry-After when the error carries one, else 1 s, 2 s, 4 s ... capped at 60 s."""
    error = state.outcome.exception() if state.outcome else None
    if isinstance(error, TransientError) and error.retry_after is not None:
        return max(0.0, error.retry_after)
    return float(_EXPONENTIAL(state))


def policy(attempts: int, sleep: Sleep = asyncio.sleep) -> AsyncRetrying:
    """The retry policy for one engine call."""
    return AsyncRetrying(
        retry=retry_if_exception(worth_waiting),
        stop=stop_after_attempt(attempts),
        wait=wait_transient,
        sleep=sleep,
        reraise=True,
    )


async def call(
    operation: Callable[[], Awaitable[T]], *, attempts: int, sleep: Sleep = asyncio.sleep
) -> T:
    """Run `operation`, retrying transient failures per `policy`."""
    async for attempt in policy(attempts, sleep):
        with attempt:
            return await operation()
    raise AssertionError("unreachable: tenacity reraises the last error")
