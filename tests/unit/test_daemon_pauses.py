"""The daemon's pauses: each reason holds all new work until it is lifted, a missing inbox
parks only its own jobs, and the credits poll pauses and resumes by the balance."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from nemowatch.daemon.pauses import Pauses, Reason, poll_credits
from nemowatch.engines.base import Credits
from nemowatch.errors import CreditsExhausted, TransientError


def test_work_resumes_only_when_the_last_reason_is_lifted() -> None:
    resumed: list[bool] = []
    pauses = Pauses(on_resume=lambda: resumed.append(True))
    assert pauses.pause(Reason.OPERATOR) is True
    assert pauses.pause(Reason.OPERATOR) is False  # already holding
    pauses.pause(Reason.CREDITS)
    assert pauses.unpause(Reason.OPERATOR) is True
    assert pauses.held and not pauses.resumed.is_set() and resumed == []
    pauses.unpause(Reason.CREDITS)
    assert not pauses.held and pauses.resumed.is_set() and resumed == [True]
    assert pauses.unpause(Reason.CREDITS) is False


def test_the_operators_pause_is_logged_once_each_way() -> None:
    pauses = Pauses()
    with capture_logs() as logs:
        pauses.by_operator(True)
        pauses.by_operator(True)
        pauses.by_operator(False)
        pauses.by_operator(False)
    assert [entry["event"] for entry in logs] == ["daemon.paused", "daemon.resumed"]


def test_a_missing_inbox_parks_its_jobs_until_it_is_back(tmp_path: Path) -> None:
    share, local = tmp_path / "share", tmp_path / "local"
    pauses = Pauses()
    assert pauses.inboxes_missing({share}) == (frozenset(), [])
    assert pauses.park("job1", share) is True
    assert pauses.park("job2", local) is False  # other rules go on
    assert pauses.park("job3", None) is False  # no rule: not the pause's business
    assert pauses.parked == 1 and not pauses.held  # only that inbox's jobs are held
    assert "1 inbox missing" in pauses.describe()
    assert pauses.inboxes_missing(set()) == (frozenset({share}), ["job1"])
    assert pauses.parked == 0 and pauses.describe() == ""


def test_the_status_line_names_each_pause() -> None:
    pauses = Pauses()
    pauses.pause(Reason.OPERATOR)
    pauses.pause(Reason.CREDITS)
    assert pauses.describe() == (
        "; paused (nemowatch resume to continue); paused: out of NemoVideo credits"
    )


class Balance:
    """The engine's `credits`, scripted: each call returns (or raises) the next answer."""

    def __init__(self, *answers: Credits | BaseException | None) -> None:
        self.answers = list(answers)
        self.calls = 0

    async def __call__(self) -> Credits | None:
        self.calls += 1
        answer = self.answers.pop(0) if self.answers else Credits(available=10)
        if isinstance(answer, BaseException):
            raise answer
        return answer


async def test_credits_polling_pauses_when_none_are_left_and_resumes_when_they_are_back() -> None:
    pauses = Pauses(credits_recheck=0.01)
    balance = Balance(
        Credits(available=0, anonymous=True, user_id="u1"),
        TransientError("the balance could not be read"),
        Credits(available=5),
    )
    with capture_logs() as logs:
        polling = asyncio.create_task(poll_credits(balance, pauses, interval=0.01))
        async with asyncio.timeout(5):
            while balance.calls < 3:
                await asyncio.sleep(0.01)
        polling.cancel()
        with pytest.raises(asyncio.CancelledError):
            await polling
    events = [entry["event"] for entry in logs]
    assert events[:3] == ["credits.exhausted", "credits.unknown", "credits.available"]
    exhausted = logs[0]
    assert "nemovideo.com/register?bind=u1" in exhausted["hint"]
    assert not pauses.held


async def test_credits_polling_ends_for_an_engine_that_costs_nothing() -> None:
    pauses = Pauses()
    await asyncio.wait_for(poll_credits(Balance(None), pauses, interval=60), timeout=5)
    assert not pauses.held


def test_running_out_of_credits_mid_job_pauses_once() -> None:
    pauses = Pauses()
    with capture_logs() as logs:
        pauses.out_of_credits(CreditsExhausted("no credits left", hint="top up"))
        pauses.out_of_credits(CreditsExhausted("no credits left", hint="top up"))
    assert [entry["event"] for entry in logs] == ["credits.exhausted"]
    assert pauses.reasons == {Reason.CREDITS}
