"""The client: headers on every call, and the retry policies, tested without sleeping."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from nemowatch.engines.base import Job, Session
from nemowatch.engines.nemo.client import POLICIES, CallKind, platform_name
from nemowatch.errors import EngineError, SessionLost, TransientError
from nemowatch.retry import PATIENCE, RetryPolicy
from nemowatch.rules import EditSpec, ExportSpec
from tests.fakes.nemo_kit import ConnectFailures, Sleeps, make_engine, serving, session_in
from tests.fakes.nemo_server import Endpoint, FakeNemo, Fault


@pytest.fixture
def fake(tmp_path: Path) -> Iterator[FakeNemo]:
    with serving(tmp_path) as server:
        yield server


def requests(fake: FakeNemo, endpoint: Endpoint) -> int:
    return len(fake.books.requests_to(endpoint))


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
    # a 429 is retried once, by the one retry layer of the call: the poll for a fresh link
    # inside a download is retried by the download's, not by one of its own as well
    assert POLICIES[CallKind.DOWNLOAD_LINK] == RetryPolicy(attempts=1, rate_limit_retries=0)
    assert all(
        policy.rate_limit_retries == 1
        for kind, policy in POLICIES.items()
        if kind is not CallKind.DOWNLOAD_LINK
    )
    assert set(POLICIES) == set(CallKind)


async def test_every_call_carries_the_token_and_attribution_headers(
    fake: FakeNemo, tmp_path: Path
) -> None:
    token = fake.mint_token()
    engine = make_engine(fake, tmp_path, token=token, skill_source="nw", skill_version="9.9")
    session = session_in(fake, token)
    await engine.credits()
    await engine.edit_checkpoint(session)
    await engine.close()
    seen = fake.books.requests
    assert len(seen) == 2
    for request in seen:
        assert request.token_sha256 == hashlib.sha256(token.encode()).hexdigest()
        assert request.attribution() == ("nw", "9.9", "linux")


async def test_an_explicit_platform_is_sent_as_is(fake: FakeNemo, tmp_path: Path) -> None:
    engine = make_engine(fake, tmp_path, skill_platform="nas")
    await engine.credits()
    await engine.close()
    assert fake.books.requests[0].attribution()[2] == "nas"


async def test_state_reads_are_retried_five_times_with_backoff(
    fake: FakeNemo, tmp_path: Path
) -> None:
    sleeps = Sleeps()
    token = fake.mint_token()
    engine = make_engine(fake, tmp_path, token=token, sleep=sleeps)
    session = session_in(fake, token)
    fake.faults.next(Fault.SERVER_ERROR, Endpoint.STATE, times=4)
    assert await engine.edit_checkpoint(session)
    await engine.close()
    assert requests(fake, Endpoint.STATE) == 5
    assert sleeps.delays == [1.0, 2.0, 4.0, 8.0]


async def test_the_last_transient_error_is_raised_when_attempts_run_out(
    fake: FakeNemo, tmp_path: Path
) -> None:
    sleeps = Sleeps()
    engine = make_engine(fake, tmp_path, sleep=sleeps)
    fake.faults.next(Fault.SERVER_ERROR, Endpoint.CREDITS, times=3, status=502)
    with pytest.raises(TransientError, match="HTTP 502"):
        await engine.credits()
    await engine.close()
    assert requests(fake, Endpoint.CREDITS) == 3
    assert sleeps.delays == [1.0, 2.0]


async def test_a_429_is_retried_once_after_its_retry_after(fake: FakeNemo, tmp_path: Path) -> None:
    sleeps = Sleeps()
    engine = make_engine(fake, tmp_path, sleep=sleeps)
    fake.faults.next(Fault.RATE_LIMIT, Endpoint.CREDITS, retry_after=7)
    assert (await engine.credits()).available == 100
    await engine.close()
    assert sleeps.delays == [7.0]


async def test_a_second_429_is_not_retried(fake: FakeNemo, tmp_path: Path) -> None:
    sleeps = Sleeps()
    engine = make_engine(fake, tmp_path, sleep=sleeps)
    fake.faults.next(Fault.RATE_LIMIT, Endpoint.CREDITS, times=2, retry_after=7)
    with pytest.raises(TransientError) as raised:
        await engine.credits()
    await engine.close()
    assert raised.value.retry_after == 7.0
    assert sleeps.delays == [7.0]
    assert requests(fake, Endpoint.CREDITS) == 2


async def test_a_429_without_retry_after_waits_30_seconds(fake: FakeNemo, tmp_path: Path) -> None:
    sleeps = Sleeps()
    engine = make_engine(fake, tmp_path, sleep=sleeps)
    body = {"detail": "Too Many Requests"}
    fake.faults.next(Fault.ANSWER, Endpoint.CREDITS, status=429, body=body)
    await engine.credits()
    await engine.close()
    assert sleeps.delays == [30.0]


async def test_a_429_asking_for_days_is_not_waited_for(fake: FakeNemo, tmp_path: Path) -> None:
    sleeps = Sleeps()
    engine = make_engine(fake, tmp_path, sleep=sleeps)
    fake.faults.next(Fault.RATE_LIMIT, Endpoint.CREDITS, retry_after=7 * 24 * 3600)
    with pytest.raises(TransientError):
        await engine.credits()
    await engine.close()
    assert sleeps.delays == []


async def test_network_errors_are_retried(fake: FakeNemo, tmp_path: Path) -> None:
    sleeps = Sleeps()
    # a timeout that an answer on time meets even on a loaded machine (at 0.2 s, the third
    # try once timed out too, at a load average of 15)
    engine = make_engine(
        fake, tmp_path, sleep=sleeps, transport=ConnectFailures(1), request_timeout=1.0
    )
    fake.faults.next(Fault.SLOW, Endpoint.CREDITS, delay=5.0)  # the answer comes too late
    assert (await engine.credits()).available == 100
    await engine.close()
    assert sleeps.delays == [1.0, 2.0]  # after the refused connection, after the timeout


async def test_permanent_errors_are_not_retried(fake: FakeNemo, tmp_path: Path) -> None:
    sleeps = Sleeps()
    engine = make_engine(fake, tmp_path, sleep=sleeps)
    fake.faults.next(Fault.ANSWER, Endpoint.CREDITS, status=422, body={"detail": "bad"})
    with pytest.raises(EngineError):
        await engine.credits()
    await engine.close()
    assert requests(fake, Endpoint.CREDITS) == 1
    assert sleeps.delays == []


async def test_a_lost_session_is_not_retried(fake: FakeNemo, tmp_path: Path) -> None:
    sleeps = Sleeps()
    engine = make_engine(fake, tmp_path, sleep=sleeps)
    with pytest.raises(SessionLost):
        await engine.edit_checkpoint(Session(id="999", data={}))
    await engine.close()
    assert sleeps.delays == []


async def test_session_creation_is_retried_three_times(fake: FakeNemo, tmp_path: Path) -> None:
    sleeps = Sleeps()
    engine = make_engine(fake, tmp_path, sleep=sleeps)
    fake.faults.next(Fault.SERVER_ERROR, Endpoint.SESSION, times=3)
    with pytest.raises(TransientError):
        await engine.open_session(_job(tmp_path))
    await engine.close()
    assert requests(fake, Endpoint.SESSION) == 3


def _job(tmp_path: Path) -> Job:
    """A job whose file NemoVideo would accept (the engine checks it before a session)."""
    source = tmp_path / "clip.mp4"
    source.write_bytes(b"video" * 1000)
    return Job(
        id="job1",
        rule="reels",
        source=source,
        instructions=(),
        edit=EditSpec(),
        export=ExportSpec(),
        work_dir=tmp_path / "work",
    )
