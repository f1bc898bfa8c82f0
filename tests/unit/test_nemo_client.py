"""The client: headers on every call, and the retry policies, tested without sleeping."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from nemowatch.engines.base import Session
from nemowatch.engines.nemo.client import POLICIES, CallKind, platform_name
from nemowatch.errors import EngineError, SessionLost, TransientError
from nemowatch.retry import PATIENCE, RetryPolicy
from tests.unit.test_nemo_fakeapi import (
    BASE_URL,
    FakeApi,
    Sleeps,
    make_engine,
    rate_limited,
    server_error,
)


def session_of(fake: FakeApi) -> Session:
    session_id = fake.new_session({"t": [], "d": 0, "m": {}})
    return Session(id=session_id, data={"session_id": session_id, "job_id": "job1"})


@pytest.mark.parametrize(
    ("system", "expected"),
    [
        ("linux", "linux"),
        ("darwin", "darwin"),
        ("win32", "windows"),
        ("cygwin", "windows"),
        ("freebsd14", "freebsd14"),
    ],
)
def test_auto_platform_is_the_operating_system(system: str, expected: str) -> None:
    assert platform_name(system) == expected


def test_the_retry_policies_are_declared_as_data() -> None:
    assert POLICIES[CallKind.STATE] == RetryPolicy(attempts=5, patience=PATIENCE)
    assert POLICIES[CallKind.CREDITS].patience == 0  # the next credits poll is its retry
    assert POLICIES[CallKind.SESSION].attempts == 3
    assert POLICIES[CallKind.UPLOAD].attempts == 3
    assert POLICIES[CallKind.RENDER_SUBMIT].attempts == 3
    assert POLICIES[CallKind.RENDER_POLL].attempts == 5
    assert POLICIES[CallKind.CREDITS].attempts == 3
    assert all(policy.rate_limit_retries == 1 for policy in POLICIES.values())
    assert set(POLICIES) == set(CallKind)


async def test_every_call_carries_the_token_and_attribution_headers(tmp_path: Path) -> None:
    fake = FakeApi()
    engine = make_engine(fake, tmp_path, skill_source="nw", skill_version="9.9")
    session = session_of(fake)
    await engine.credits()
    await engine.edit_checkpoint(session)
    await engine.close()
    assert len(fake.requests) == 2
    for request in fake.requests:
        assert request.headers["authorization"] == "Bearer nmv_env_token_123456"
        assert request.headers["x-skill-source"] == "nw"
        assert request.headers["x-skill-version"] == "9.9"
        assert request.headers["x-skill-platform"] == "linux"


async def test_an_explicit_platform_is_sent_as_is(tmp_path: Path) -> None:
    fake = FakeApi()
    engine = make_engine(fake, tmp_path, skill_platform="nas")
    await engine.credits()
    await engine.close()
    assert fake.requests[0].headers["x-skill-platform"] == "nas"


async def test_state_reads_are_retried_five_times_with_backoff(tmp_path: Path) -> None:
    fake = FakeApi()
    sleeps = Sleeps()
    engine = make_engine(fake, tmp_path, sleep=sleeps)
    session = session_of(fake)
    fake.fail("state", *[server_error()] * 4)
    assert await engine.edit_checkpoint(session)
    await engine.close()
    assert fake.count("state") == 5
    assert sleeps.delays == [1.0, 2.0, 4.0, 8.0]


async def test_the_last_transient_error_is_raised_when_attempts_run_out(tmp_path: Path) -> None:
    fake = FakeApi()
    sleeps = Sleeps()
    engine = make_engine(fake, tmp_path, sleep=sleeps)
    fake.fail("credits", *[server_error(502)] * 3)
    with pytest.raises(TransientError, match="HTTP 502"):
        await engine.credits()
    await engine.close()
    assert fake.count("credits") == 3
    assert sleeps.delays == [1.0, 2.0]


async def test_a_429_is_retried_once_after_its_retry_after(tmp_path: Path) -> None:
    fake = FakeApi()
    sleeps = Sleeps()
    engine = make_engine(fake, tmp_path, sleep=sleeps)
    fake.fail("credits", rate_limited("7"))
    assert (await engine.credits()).available == 90
    await engine.close()
    assert sleeps.delays == [7.0]


async def test_a_second_429_is_not_retried(tmp_path: Path) -> None:
    fake = FakeApi()
    sleeps = Sleeps()
    engine = make_engine(fake, tmp_path, sleep=sleeps)
    fake.fail("credits", rate_limited("7"), rate_limited("7"))
    with pytest.raises(TransientError) as raised:
        await engine.credits()
    await engine.close()
    assert raised.value.retry_after == 7.0
    assert sleeps.delays == [7.0]
    assert fake.count("credits") == 2


async def test_a_429_without_retry_after_waits_30_seconds(tmp_path: Path) -> None:
    fake = FakeApi()
    sleeps = Sleeps()
    engine = make_engine(fake, tmp_path, sleep=sleeps)
    fake.fail("credits", rate_limited(None))
    await engine.credits()
    await engine.close()
    assert sleeps.delays == [30.0]


async def test_a_429_asking_for_days_is_not_waited_for(tmp_path: Path) -> None:
    fake = FakeApi()
    sleeps = Sleeps()
    engine = make_engine(fake, tmp_path, sleep=sleeps)
    fake.fail("credits", rate_limited(str(7 * 24 * 3600)))
    with pytest.raises(TransientError):
        await engine.credits()
    await engine.close()
    assert sleeps.delays == []


async def test_network_errors_are_retried(tmp_path: Path) -> None:
    fake = FakeApi()
    sleeps = Sleeps()
    engine = make_engine(fake, tmp_path, sleep=sleeps)
    request = httpx.Request("GET", BASE_URL + "/api/credits/balance/simple")
    fake.fail("credits", httpx.ConnectError("refused", request=request))
    fake.fail("credits", httpx.ReadTimeout("timed out", request=request))
    assert (await engine.credits()).available == 90
    await engine.close()
    assert sleeps.delays == [1.0, 2.0]


async def test_permanent_errors_are_not_retried(tmp_path: Path) -> None:
    fake = FakeApi()
    sleeps = Sleeps()
    engine = make_engine(fake, tmp_path, sleep=sleeps)
    fake.fail("credits", httpx.Response(422, json={"detail": "bad"}))
    with pytest.raises(EngineError):
        await engine.credits()
    await engine.close()
    assert fake.count("credits") == 1
    assert sleeps.delays == []


async def test_a_lost_session_is_not_retried(tmp_path: Path) -> None:
    fake = FakeApi()
    sleeps = Sleeps()
    engine = make_engine(fake, tmp_path, sleep=sleeps)
    with pytest.raises(SessionLost):
        await engine.edit_checkpoint(Session(id="999", data={}))
    await engine.close()
    assert sleeps.delays == []


async def test_session_creation_is_retried_three_times(tmp_path: Path) -> None:
    fake = FakeApi()
    sleeps = Sleeps()
    engine = make_engine(fake, tmp_path, sleep=sleeps)
    fake.fail("session", *[server_error()] * 3)
    with pytest.raises(TransientError):
        await engine.open_session(job=None)  # type: ignore[arg-type]
    await engine.close()
    assert fake.count("session") == 3
