"""Which token the engine presents: $NEMO_TOKEN, or an anonymous one kept 0600 and reused."""

from __future__ import annotations

import asyncio
import hashlib
import json
import stat
from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from nemowatch.engines.nemo.auth import TOKEN_FILE
from nemowatch.errors import AuthError
from tests.fakes.nemo_books import IssuedToken
from tests.fakes.nemo_kit import Wall, make_engine, serving
from tests.fakes.nemo_server import Endpoint, ErrorStyle, FakeNemo, Fault


@pytest.fixture
def wall() -> Wall:
    return Wall()


@pytest.fixture
def fake(tmp_path: Path, wall: Wall) -> Iterator[FakeNemo]:
    with serving(tmp_path, wall) as server:
        yield server


def issued(fake: FakeNemo) -> list[IssuedToken]:
    return [token for tokens in fake.books.tokens.values() for token in tokens]


def sha(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def presented(fake: FakeNemo) -> list[str | None]:
    """The digests of the tokens the credit reads presented."""
    return [request.token_sha256 for request in fake.books.requests_to(Endpoint.CREDITS)]


async def test_nemo_token_from_the_environment_wins(fake: FakeNemo, tmp_path: Path) -> None:
    token = fake.mint_token()
    engine = make_engine(fake, tmp_path, token=token)
    credits = await engine.credits()
    await engine.close()
    assert presented(fake) == [sha(token)]
    assert issued(fake) == []
    assert not (tmp_path / TOKEN_FILE).exists()
    assert credits.anonymous is False


async def test_an_anonymous_token_is_requested_with_a_client_id_and_kept_0600(
    fake: FakeNemo, tmp_path: Path
) -> None:
    engine = make_engine(fake, tmp_path, token=None)
    credits = await engine.credits()
    await engine.close()

    (token,) = issued(fake)
    kept = tmp_path / TOKEN_FILE
    assert stat.S_IMODE(kept.stat().st_mode) == 0o600
    saved = json.loads(kept.read_text())
    assert saved["client_id"] == token.client_id
    assert saved["token"] == token.token
    assert saved["user_id"] == credits.user_id == token.user_id
    assert saved["expires_at"].startswith("2030-01-08")
    assert credits.anonymous is True
    assert presented(fake) == [sha(token.token)]


async def test_the_kept_token_is_reused_after_a_restart(fake: FakeNemo, tmp_path: Path) -> None:
    first = make_engine(fake, tmp_path, token=None)
    await first.credits()
    await first.close()
    second = make_engine(fake, tmp_path, token=None)
    await second.credits()
    await second.close()
    assert len(issued(fake)) == 1


async def test_a_token_about_to_expire_is_renewed_with_the_same_client_id(
    fake: FakeNemo, tmp_path: Path, wall: Wall
) -> None:
    first = make_engine(fake, tmp_path, token=None, wall=wall)
    await first.credits()
    await first.close()
    wall.advance(timedelta(days=7) - timedelta(minutes=30))  # expiry is a week later
    second = make_engine(fake, tmp_path, token=None, wall=wall)
    await second.credits()  # asks early; the API's one-per-week limit says not yet
    wall.advance(timedelta(minutes=31))  # now it has expired: refused, then renewed
    assert (await second.credits()).available == 100
    await second.close()
    (client_id,) = fake.books.tokens
    asked = [request.headers["x-client-id"] for request in fake.books.requests_to(Endpoint.TOKEN)]
    assert asked == [client_id] * 3
    assert len(issued(fake)) == 2


async def test_a_refused_token_is_renewed_once_and_the_call_succeeds(
    fake: FakeNemo, tmp_path: Path
) -> None:
    engine = make_engine(fake, tmp_path, token=None)
    await engine.credits()
    fake.expire_tokens()
    credits = await engine.credits()
    await engine.close()
    assert credits.available == 100
    first, second = issued(fake)
    assert first.client_id == second.client_id
    assert presented(fake)[-1] == sha(second.token)


async def test_an_http_401_is_handled_like_code_1001(fake: FakeNemo, tmp_path: Path) -> None:
    fake.variants = replace(fake.variants, error_style=ErrorStyle.HTTP)
    engine = make_engine(fake, tmp_path, token=None)
    await engine.credits()
    fake.expire_tokens()
    await engine.credits()
    await engine.close()
    assert 401 in [request.status for request in fake.books.requests_to(Endpoint.CREDITS)]
    assert len(issued(fake)) == 2


async def test_a_second_refusal_is_an_auth_error(fake: FakeNemo, tmp_path: Path) -> None:
    engine = make_engine(fake, tmp_path, token=None)
    await engine.credits()
    fake.faults.next(Fault.EXPIRED_TOKEN, Endpoint.CREDITS, times=2)  # even a fresh one
    with pytest.raises(AuthError) as raised:
        await engine.credits()
    await engine.close()
    assert len(issued(fake)) == 2  # renewed once, not again
    assert "nmv_usr" not in str(raised.value)
    assert "nmv_usr" not in (raised.value.hint or "")


async def test_a_refused_nemo_token_fails_with_a_clear_message_and_no_fallback(
    fake: FakeNemo, tmp_path: Path
) -> None:
    token = fake.mint_token()
    fake.expire_tokens()
    engine = make_engine(fake, tmp_path, token=token)
    with pytest.raises(AuthError, match="NEMO_TOKEN was refused: set a valid token") as raised:
        await engine.credits()
    await engine.close()
    assert issued(fake) == []
    assert token not in str(raised.value)
    assert token not in repr(raised.value)


async def test_concurrent_refusals_renew_the_token_once(fake: FakeNemo, tmp_path: Path) -> None:
    engine = make_engine(fake, tmp_path, token=None)
    await engine.credits()
    fake.expire_tokens()
    await asyncio.gather(engine.credits(), engine.credits(), engine.credits())
    await engine.close()
    assert len(issued(fake)) == 2


async def test_a_kept_file_readable_by_others_is_made_private(
    fake: FakeNemo, tmp_path: Path
) -> None:
    first = make_engine(fake, tmp_path, token=None)
    await first.credits()
    await first.close()
    kept = tmp_path / TOKEN_FILE
    kept.chmod(0o644)
    second = make_engine(fake, tmp_path, token=None)
    await second.credits()
    await second.close()
    assert stat.S_IMODE(kept.stat().st_mode) == 0o600
    assert len(issued(fake)) == 1


async def test_no_log_line_carries_a_token(fake: FakeNemo, tmp_path: Path) -> None:
    with capture_logs() as logs:
        engine = make_engine(fake, tmp_path, token=None)
        await engine.credits()
        fake.expire_tokens()
        await engine.credits()
        await engine.close()
    assert any(entry["event"] == "nemo.token.requested" for entry in logs)
    tokens = issued(fake)
    assert len(tokens) == 2
    for token in tokens:
        assert token.token not in repr(logs)
        assert token.client_id not in repr(logs)  # the client id obtains tokens: kept quiet
