"""When crashes make a job a suspect, and when they fail it (`nemowatch.crashes`)."""

from __future__ import annotations

import pytest

from nemowatch.crashes import Verdict, failure, verdict


@pytest.mark.parametrize(
    ("crashes", "alone", "expected"),
    [
        (0, False, Verdict.CLEAR),
        (4, True, Verdict.CLEAR),  # alone, but fewer crashes than the limit
        (5, False, Verdict.ISOLATE),  # always in company: any of the others may be to blame
        (6, False, Verdict.ISOLATE),
        (5, True, Verdict.CRASHES_DAEMON),
        (6, True, Verdict.CRASHES_DAEMON),  # the isolated run crashed too
    ],
)
def test_the_verdict_needs_the_limit_of_crashes_and_one_of_them_alone(
    crashes: int, alone: bool, expected: Verdict
) -> None:
    assert verdict(crashes, alone, limit=5) is expected


def test_a_job_that_crashes_the_daemon_fails_saying_so_with_what_to_do() -> None:
    error = failure(3)
    assert "crashed the daemon" in str(error) and "3 times" in str(error)
    assert error.hint is not None and "nemowatch process" in error.hint
    assert "nemowatch retry" in error.hint
    assert error.retryable
