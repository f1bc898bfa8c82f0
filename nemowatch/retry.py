"""Retry policy, declared once as data: what is retried, how often, with what backoff.

Only `TransientError` is retried; a server's requested delay (Retry-After) wins over the
exponential schedule, up to MAX_RETRY_AFTER: a longer one fails the step at once. Tests
pass `sleep=` a recorder, so no test waits for real.

A step gives up only once it has had both its `attempts` and its `patience` (seconds of
waiting between them): a service that is down for ten minutes is waited out, at most a
minute apart, instead of failing every job that needed it after a few seconds. The
patience is counted in the waits the schedule asked for, not on a clock, so a recorder
`sleep` sees exactly the schedule a real one would.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

import structlog
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    wait_exponential,
)

from nemowatch.errors import TransientError

log = structlog.get_logger("nemowatch.retry")

T = TypeVar("T")

Sleep = Callable[[float], Awaitable[None]]

_EXPONENTIAL = wait_exponential(multiplier=1.0, min=1.0, max=60.0)
MAX_RETRY_AFTER = 300.0  # seconds: a server asking for longer fails the step instead
PATIENCE = 1800.0  # seconds of waiting a step sits out transient failures (an outage) for


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


def backoff(attempt: int, error: BaseException | None = None) -> float:
    """The wait after failed attempt number `attempt` (1, 2, ...): the error's Retry-After
    when it carries one, else 1 s, 2 s, 4 s ... capped at 60 s."""
    if isinstance(error, TransientError) and error.retry_after is not None:
        return max(0.0, error.retry_after)
    return float(min(_EXPONENTIAL.max, _EXPONENTIAL.min * 2 ** max(0, attempt - 1)))


def gives_up(attempt: int, waited: float, *, attempts: int, patience: float) -> bool:
    """Whether a step that failed `attempt` times, after waiting `waited` seconds in all,
    stops: only once it has had both its attempts and its patience."""
    return attempt >= attempts and waited >= patience


def policy(attempts: int, sleep: Sleep = asyncio.sleep, patience: float = 0.0) -> AsyncRetrying:
    """The retry policy for one engine call."""

    def stop(state: RetryCallState) -> bool:
        # idle_for: the waits asked for so far (what a recorder `sleep` was given)
        return gives_up(state.attempt_number, state.idle_for, attempts=attempts, patience=patience)

    return AsyncRetrying(
        retry=retry_if_exception(worth_waiting),
        stop=stop,
        wait=wait_transient,
        sleep=sleep,
        before_sleep=_log_retry,
        reraise=True,
    )


def _log_retry(state: RetryCallState) -> None:
    """One line per retry, with why, which attempt failed and how long it waits: a retry
    nobody hears of is a job that seems stuck."""
    error = state.outcome.exception() if state.outcome else None
    log.info(
        "step.retry",
        error=str(error),
        attempt=state.attempt_number,
        wait_s=round(state.next_action.sleep, 1) if state.next_action else None,
    )


async def call(
    operation: Callable[[], Awaitable[T]],
    *,
    attempts: int,
    sleep: Sleep = asyncio.sleep,
    patience: float = 0.0,
) -> T:
    """Run `operation`, retrying transient failures per `policy`."""
    async for attempt in policy(attempts, sleep, patience):
        with attempt:
            return await operation()
    raise AssertionError("unreachable: tenacity reraises the last error")
