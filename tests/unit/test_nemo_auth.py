"""Which token the engine presents: $NEMO_TOKEN, or an anonymous one kept 0600 and reused."""

from __future__ import annotations

import asyncio
import json
import stat
from datetime import timedelta
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from nemowatch.engines.nemo.auth import TOKEN_FILE
from nemowatch.errors import AuthError
from tests.unit.test_nemo_fakeapi import NOW, FakeApi, make_engine

ENV_TOKEN = "nmv_env_token_123456"


def authorizations(fake: FakeApi) -> list[str]:
    return [
        request.headers.get("authorization", "")
        for request in fake.requests
        if request.url.path == "/api/credits/balance/simple"
    ]


async def test_nemo_token_from_the_environment_wins(tmp_path: Path) -> None:
    fake = FakeApi()
    engine = make_engine(fake, tmp_path, token=ENV_TOKEN)
    credits = await engine.credits()
    await engine.close()
    assert authorizations(fake) == [f"Bearer {ENV_TOKEN}"]
    assert fake.issued == 0
    assert not (tmp_path / TOKEN_FILE).exists()
    assert credits.anonymous is False


async def test_an_anonymous_token_is_requested_with_a_client_id_and_kept_0600(
    tmp_path: Path,
) -> None:
    fake = FakeApi()
    engine = make_engine(fake, tmp_path, token=None)
    credits = await engine.credits()
    await engine.close()

    assert fake.issued == 1
    kept = tmp_path / TOKEN_FILE
    assert stat.S_IMODE(kept.stat().st_mode) == 0o600
    saved = json.loads(kept.read_text())
    assert saved["client_id"] == fake.token_clients[0]
    assert saved["token"] == "nmv_usr_secret0001abcdef"
    assert saved["user_id"] == credits.user_id
    assert saved["expires_at"].startswith("2030-01-08")
    assert credits.anonymous is True
    assert authorizations(fake) == ["Bearer nmv_usr_secret0001abcdef"]


async def test_the_kept_token_is_reused_after_a_restart(tmp_path: Path) -> None:
    fake = FakeApi()
    first = make_engine(fake, tmp_path, token=None)
    await first.credits()
    await first.close()
    second = make_engine(fake, tmp_path, token=None)
    await second.credits()
    await second.close()
    assert fake.issued == 1


async def test_a_token_about_to_expire_is_renewed_with_the_same_client_id(tmp_path: Path) -> None:
    fake = FakeApi()
    first = make_engine(fake, tmp_path, token=None)
    await first.credits()
    await first.close()
    later = NOW + timedelta(days=7) - timedelta(minutes=30)  # expiry is a week after NOW
    second = make_engine(fake, tmp_path, token=None, now=lambda: later)
    await second.credits()
    await second.close()
    assert fake.issued == 2
    assert fake.token_clients[0] == fake.token_clients[1]


async def test_a_refused_token_is_renewed_once_and_the_call_succeeds(tmp_path: Path) -> None:
    fake = FakeApi()
    engine = make_engine(fake, tmp_path, token=None)
    await engine.credits()
    fake.valid_tokens.discard("nmv_usr_secret0001abcdef")  # the server expires it
    credits = await engine.credits()
    await engine.close()
    assert credits.available == 90
    assert fake.issued == 2
    assert len(set(fake.token_clients)) == 1
    assert authorizations(fake)[-1] == "Bearer nmv_usr_secret0002abcdef"


async def test_an_http_401_is_handled_like_code_1001(tmp_path: Path) -> None:
    fake = FakeApi()
    fake.auth_style = "http"
    engine = make_engine(fake, tmp_path, token=None)
    await engine.credits()
    fake.valid_tokens.clear()
    await engine.credits()
    await engine.close()
    assert fake.issued == 2


async def test_a_second_refusal_is_an_auth_error(tmp_path: Path) -> None:
    fake = FakeApi()
    engine = make_engine(fake, tmp_path, token=None)
    await engine.credits()
    fake.refuse_all = True
    with pytest.raises(AuthError) as raised:
        await engine.credits()
    await engine.close()
    assert fake.issued == 2  # renewed once, not again
    assert "nmv_usr" not in str(raised.value)
    assert "nmv_usr" not in (raised.value.hint or "")


async def test_a_refused_nemo_token_fails_with_a_clear_message_and_no_fallback(
    tmp_path: Path,
) -> None:
    fake = FakeApi()
    fake.valid_tokens.clear()
    engine = make_engine(fake, tmp_path, token=ENV_TOKEN)
    with pytest.raises(AuthError, match="NEMO_TOKEN was refused: set a valid token") as raised:
        await engine.credits()
    await engine.close()
    assert fake.issued == 0
    assert ENV_TOKEN not in str(raised.value)
    assert ENV_TOKEN not in repr(raised.value)


async def test_concurrent_refusals_renew_the_token_once(tmp_path: Path) -> None:
    fake = FakeApi()
    engine = make_engine(fake, tmp_path, token=None)
    await engine.credits()
    fake.valid_tokens.clear()
    await asyncio.gather(engine.credits(), engine.credits(), engine.credits())
    await engine.close()
    assert fake.issued == 2


async def test_a_kept_file_readable_by_others_is_made_private(tmp_path: Path) -> None:
    fake = FakeApi()
    first = make_engine(fake, tmp_path, token=None)
    await first.credits()
    await first.close()
    kept = tmp_path / TOKEN_FILE
    kept.chmod(0o644)
    second = make_engine(fake, tmp_path, token=None)
    await second.credits()
    await second.close()
    assert stat.S_IMODE(kept.stat().st_mode) == 0o600
    assert fake.issued == 1


async def test_no_log_line_carries_a_token(tmp_path: Path) -> None:
    fake = FakeApi()
    with capture_logs() as logs:
        engine = make_engine(fake, tmp_path, token=None)
        await engine.credits()
        fake.valid_tokens.clear()
        await engine.credits()
        await engine.close()
    assert any(entry["event"] == "nemo.token.requested" for entry in logs)
    assert "nmv_usr_secret" not in repr(logs)
    assert fake.token_clients[0] not in repr(logs)  # the client id obtains tokens: kept quiet
