"""The retry policy, tested without sleeping: `sleep` is a recorder."""

from __future__ import annotations

import pytest
from structlog.testing import capture_logs

from nemowatch import retry
from nemowatch.errors import MediaError, RateLimited, TransientError

THREE = retry.RetryPolicy(attempts=3)


class Recorder:
    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)


class Flaky:
    def __init__(self, failures: list[Exception]) -> None:
        self.failures = failures
        self.calls = 0

    async def __call__(self) -> str:
        self.calls += 1
        if self.failures:
            raise self.failures.pop(0)
        return "ok"


async def test_transient_errors_are_retried_with_exponential_backoff() -> None:
    sleep = Recorder()
    operation = Flaky([TransientError("503"), TransientError("503")])
    assert await retry.call(operation, THREE, what="test", sleep=sleep) == "ok"
    assert sleep.delays == [1.0, 2.0]


async def test_retry_after_wins_over_the_schedule() -> None:
    sleep = Recorder()
    operation = Flaky([TransientError("429", retry_after=17.0)])
    await retry.call(operation, THREE, what="test", sleep=sleep)
    assert sleep.delays == [17.0]


async def test_permanent_errors_are_not_retried() -> None:
    sleep = Recorder()
    operation = Flaky([MediaError("corrupt")])
    with pytest.raises(MediaError):
        await retry.call(operation, THREE, what="test", sleep=sleep)
    assert operation.calls == 1
    assert sleep.delays == []


async def test_the_last_transient_error_is_raised_when_attempts_run_out() -> None:
    operation = Flaky([TransientError(f"fail {n}") for n in range(5)])
    with pytest.raises(TransientError, match="fail 2"):
        await retry.call(operation, THREE, what="test", sleep=Recorder())
    assert operation.calls == 3


async def test_a_retry_after_beyond_the_cap_fails_at_once_instead_of_waiting() -> None:
    sleep = Recorder()
    operation = Flaky([TransientError("429", retry_after=7 * 24 * 3600.0)])
    with pytest.raises(TransientError):
        await retry.call(operation, THREE, what="test", sleep=sleep)
    assert operation.calls == 1
    assert sleep.delays == []


async def test_an_outage_shorter_than_the_patience_is_waited_out() -> None:
    sleep = Recorder()
    operation = Flaky([TransientError("connection refused") for _ in range(6)])
    assert (
        await retry.call(operation, retry.RetryPolicy(3, patience=100.0), what="test", sleep=sleep)
        == "ok"
    )
    assert sleep.delays == [1.0, 2.0, 4.0, 8.0, 16.0, 32.0]


async def test_a_step_gives_up_once_its_attempts_and_its_patience_are_both_spent() -> None:
    sleep = Recorder()
    operation = Flaky([TransientError(f"refused {n}") for n in range(20)])
    with pytest.raises(TransientError, match="refused 7"):
        await retry.call(operation, retry.RetryPolicy(3, patience=100.0), what="test", sleep=sleep)
    assert sleep.delays == [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 60.0]  # 123 s >= 100 s


async def test_the_backoff_doubles_up_to_a_minute() -> None:
    sleep = Recorder()
    operation = Flaky([TransientError("refused") for _ in range(8)])
    await retry.call(operation, retry.RetryPolicy(9), what="test", sleep=sleep)
    assert sleep.delays == [1, 2, 4, 8, 16, 32, 60, 60]


async def test_a_429_is_retried_once_after_its_wait_whatever_the_attempts() -> None:
    sleep = Recorder()
    operation = Flaky([RateLimited("slow down", retry_after=7.0) for _ in range(3)])
    with pytest.raises(RateLimited):
        await retry.call(operation, retry.RetryPolicy(5, patience=600.0), what="t", sleep=sleep)
    assert operation.calls == 2
    assert sleep.delays == [7.0]
    once = Flaky([RateLimited("slow down", retry_after=7.0)])
    assert await retry.call(once, retry.RetryPolicy(1), what="t", sleep=Recorder()) == "ok"


async def test_every_retry_is_logged_with_what_why_which_attempt_and_the_wait() -> None:
    operation = Flaky([TransientError("503 upstream"), RateLimited("429", retry_after=3.0)])
    with capture_logs() as logs:
        await retry.call(operation, THREE, what="upload", sleep=Recorder())
    retries = [entry for entry in logs if entry["event"] == "retry"]
    assert [(e["what"], e["error"], e["attempt"], e["wait_s"]) for e in retries] == [
        ("upload", "503 upstream", 1, 1.0),
        ("upload", "429", 2, 3.0),
    ]
    assert all(entry["log_level"] == "info" for entry in retries)
