"""Transport retries, declared once as data: what is retried, how often, with what backoff.

Retries live in one layer: the engine retries the calls it makes on the wire (each kind of
call with its `RetryPolicy`); the pipeline retries nothing, it only records how a job
ended (done, failed and worth retrying, failed for good, waiting for credits). A
`TransientError` that leaves an engine has had all the tries its policy allows.

Only `TransientError` is retried. A server's requested delay (Retry-After) wins over the
exponential schedule; a `RateLimited` answer is retried `rate_limit_retries` times (once),
and not at all when it asks for longer than `max_wait`. Every retry is logged at info
(`retry`: what, why, which attempt failed, how long it waits): a retry nobody hears of is
a job that seems stuck. Tests pass `sleep=` a recorder, so no test waits for real.

A call gives up only once it has had both its `attempts` and its `patience` (seconds of
waiting between them): a service that is down for ten minutes is waited out, at most a
minute apart, instead of failing every job that needed it after a few seconds. The
patience is counted in the waits the schedule asked for, not on a clock, so a recorder
`sleep` sees exactly the schedule a real one would.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

import structlog
from tenacity import AsyncRetrying, RetryCallState, wait_exponential

from nemowatch.errors import RateLimited, TransientError

log = structlog.get_logger("nemowatch.retry")

T = TypeVar("T")

Sleep = Callable[[float], Awaitable[None]]

_EXPONENTIAL = wait_exponential(multiplier=1.0, min=1.0, max=60.0)
MAX_RETRY_AFTER = 300.0  # seconds: a server asking for longer fails the call instead
PATIENCE = 1800.0  # seconds of waiting an outage is sat out for, by calls that have it


@dataclass(frozen=True)
class RetryPolicy:
    """How one kind of call is retried.

    `attempts`: tries in all for an error a retry can help (a dropped connection, a 5xx, a
    timeout), 1 s, 2 s, 4 s ... up to a minute apart; `patience`: seconds of such waiting
    the call sits out even past its attempts (an outage); `rate_limit_retries`: retries of
    a 429, after the wait it asks for; `max_wait`: a longer requested wait fails at once.
    """

    attempts: int
    patience: float = 0.0
    rate_limit_retries: int = 1
    max_wait: float = MAX_RETRY_AFTER


def wait_transient(state: RetryCallState) -> float:
    """Retry-After when the error carries one, else 1 s, 2 s, 4 s ... capped at 60 s."""
    error = state.outcome.exception() if state.outcome else None
    if isinstance(error, TransientError) and error.retry_after is not None:
        return max(0.0, error.retry_after)
    return float(_EXPONENTIAL(state))


def retrying(policy: RetryPolicy, *, what: str, sleep: Sleep = asyncio.sleep) -> AsyncRetrying:
    """A tenacity retrier for one call under `policy` (fresh per call: it counts 429s)."""
    rate_limited = 0

    def should_retry(state: RetryCallState) -> bool:
        nonlocal rate_limited
        error = state.outcome.exception() if state.outcome else None
        if not isinstance(error, TransientError):
            return False
        if error.retry_after is not None and error.retry_after > policy.max_wait:
            return False  # e.g. an anonymous-token limit lasting days: fail, retry the job
        if isinstance(error, RateLimited):
            rate_limited += 1
            return rate_limited <= policy.rate_limit_retries
        return True

    def stop(state: RetryCallState) -> bool:
        error = state.outcome.exception() if state.outcome else None
        if isinstance(error, RateLimited):
            return False  # its own budget, counted in should_retry, whatever `attempts` is
        # idle_for: the waits asked for so far (what a recorder `sleep` was given)
        return state.attempt_number >= policy.attempts and state.idle_for >= policy.patience

    def before_sleep(state: RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome else None
        log.info(
            "retry",
            what=what,
            error=str(error),
            attempt=state.attempt_number,
            wait_s=round(state.next_action.sleep, 1) if state.next_action else None,
        )

    return AsyncRetrying(
        retry=should_retry,
        stop=stop,
        wait=wait_transient,
        sleep=sleep,
        before_sleep=before_sleep,
        reraise=True,
    )


async def call(
    operation: Callable[[], Awaitable[T]],
    policy: RetryPolicy,
    *,
    what: str,
    sleep: Sleep = asyncio.sleep,
) -> T:
    """Run `operation`, retrying transient failures per `policy`."""
    async for attempt in retrying(policy, what=what, sleep=sleep):
        with attempt:
            return await operation()
    raise AssertionError("unreachable: tenacity reraises the last error")
