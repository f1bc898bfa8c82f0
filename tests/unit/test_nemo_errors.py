"""nemo-api.md's error table, one test per row, and the envelope unwrapping order."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
import pytest

from nemowatch.engines.nemo import errors
from nemowatch.engines.nemo.errors import Account, Call, error_for, unwrap
from nemowatch.errors import (
    AuthError,
    CreditsExhausted,
    EngineError,
    MediaError,
    SessionLost,
    TransientError,
)

CALL = Call(what="do it", account=Account(user_id="anon_42", anonymous=True))


# ---------------------------------------------------------------- the table, row by row


def test_code_0_is_success_and_yields_data() -> None:
    assert unwrap(200, {"code": 0, "message": "ok", "data": {"a": 1}}, CALL) == {"a": 1}


@pytest.mark.parametrize("code", [1001, 1010, 1011])
def test_token_codes_are_auth_errors(code: int) -> None:
    assert isinstance(error_for(200, {"code": code, "message": "bad token"}, CALL), AuthError)


def test_http_401_is_an_auth_error() -> None:
    assert isinstance(error_for(401, {"detail": "Not authenticated"}, CALL), AuthError)


def test_code_1002_is_a_lost_session() -> None:
    assert isinstance(error_for(200, {"code": 1002, "message": "no session"}, CALL), SessionLost)


def test_fastapi_404_session_not_found_is_a_lost_session() -> None:
    error = error_for(404, {"detail": "Session not found: 1234"}, CALL)
    assert isinstance(error, SessionLost)


def test_code_2001_tells_an_anonymous_user_where_to_register() -> None:
    error = error_for(200, {"code": 2001, "message": "insufficient credits"}, CALL)
    assert isinstance(error, CreditsExhausted)
    assert "https://nemovideo.com/register?bind=anon_42" in str(error)
    assert error.retryable  # pause and resume, do not fail the files


def test_code_2001_tells_a_registered_user_to_top_up() -> None:
    registered = Call(what="do it", account=Account(user_id="u_7", anonymous=False))
    error = error_for(200, {"code": 2001}, registered)
    assert isinstance(error, CreditsExhausted)
    assert "top up" in str(error)
    assert "register?bind" not in str(error)


def test_code_4001_is_an_unsupported_file_that_is_not_retried() -> None:
    error = error_for(200, {"code": 4001, "message": "unsupported format"}, CALL)
    assert isinstance(error, MediaError)
    assert not error.retryable


def test_code_4002_is_a_file_too_large_with_a_hint_to_compress_or_trim() -> None:
    error = error_for(200, {"code": 4002, "message": "too large"}, CALL)
    assert isinstance(error, MediaError)
    assert not error.retryable
    assert error.hint is not None and "compress" in error.hint and "trim" in error.hint


def test_http_400_on_the_anonymous_token_request_is_reported_as_a_bug() -> None:
    call = Call(what="get an anonymous token", token_request=True)
    error = error_for(400, {"detail": "X-Client-Id header required"}, call)
    assert isinstance(error, EngineError)
    assert "bug" in str(error) and "X-Client-Id" in str(error)
    assert not error.retryable


def test_http_402_is_a_plan_problem_not_a_credit_problem() -> None:
    error = error_for(402, {"detail": "Payment Required"}, CALL)
    assert isinstance(error, EngineError)
    assert not isinstance(error, CreditsExhausted)
    assert "register or upgrade your plan" in str(error)
    assert not error.retryable


def test_http_429_waits_for_retry_after() -> None:
    error = error_for(429, {"detail": "slow down"}, CALL, retry_after=12.0)
    assert isinstance(error, errors.RateLimited)
    assert error.retry_after == 12.0


def test_http_429_without_retry_after_waits_30_seconds() -> None:
    response = httpx.Response(429, json={"detail": "slow down"})
    with pytest.raises(errors.RateLimited) as raised:
        errors.check(response, CALL)
    assert raised.value.retry_after == 30.0


@pytest.mark.parametrize("status", [500, 502, 503, 504, 408])
def test_server_errors_are_transient(status: int) -> None:
    assert isinstance(error_for(status, "<html>Bad Gateway</html>", CALL), TransientError)


def test_a_504_may_have_been_delivered() -> None:
    assert isinstance(error_for(504, "", CALL), errors.MaybeDelivered)


def test_connect_errors_are_transient_and_were_not_sent() -> None:
    request = httpx.Request("POST", "https://api.test/run_sse")
    error = errors.from_transport(httpx.ConnectError("refused", request=request), CALL)
    assert isinstance(error, errors.RequestNotSent)
    assert isinstance(error, TransientError)


@pytest.mark.parametrize(
    "failure",
    [httpx.ReadTimeout, httpx.WriteTimeout, httpx.ReadError, httpx.RemoteProtocolError],
)
def test_timeouts_and_broken_connections_are_transient_and_may_have_been_sent(
    failure: type[httpx.TransportError],
) -> None:
    request = httpx.Request("POST", "https://api.test/run_sse")
    error = errors.from_transport(failure("boom", request=request), CALL)
    assert isinstance(error, errors.MaybeDelivered)


# ---------------------------------------------------------------- envelopes


def test_success_envelope_yields_data() -> None:
    assert unwrap(200, {"success": True, "data": {"id": "r1"}}, CALL) == {"id": "r1"}


def test_success_envelope_without_data_yields_the_rest() -> None:
    assert unwrap(200, {"success": True, "id": "r1"}, CALL) == {"id": "r1"}


def test_bare_body_is_its_own_data() -> None:
    body = {"taskId": "t", "status": "completed"}
    assert unwrap(200, body, CALL) == body


def test_code_envelope_wins_over_a_success_key_inside_data() -> None:
    body = {"code": 0, "data": {"success": False}}
    assert unwrap(200, body, CALL) == {"success": False}


def test_code_envelope_with_null_data_is_empty() -> None:
    assert unwrap(200, {"code": 0, "data": None}, CALL) == {}


def test_string_codes_are_read_as_numbers() -> None:
    assert isinstance(error_for(200, {"code": "2001"}, CALL), CreditsExhausted)


def test_the_http_status_is_checked_before_the_body() -> None:
    # a 5xx whose body looks like a success is still a failure
    assert isinstance(error_for(503, {"code": 0, "data": {}}, CALL), TransientError)


def test_a_4xx_with_a_table_code_follows_the_code() -> None:
    assert isinstance(error_for(400, {"code": 4002, "message": "too big"}, CALL), MediaError)


def test_success_false_is_an_error_with_the_servers_message() -> None:
    error = error_for(200, {"success": False, "error": "draft invalid"}, CALL)
    assert isinstance(error, EngineError)
    assert "draft invalid" in str(error)


def test_success_false_with_a_duplicate_id_is_recognised() -> None:
    body = {"success": False, "error": "render id render_x_1 already exists"}
    assert isinstance(error_for(200, body, CALL), errors.DuplicateId)


def test_http_409_is_a_duplicate_id() -> None:
    assert isinstance(error_for(409, {"detail": "conflict"}, CALL), errors.DuplicateId)


def test_other_404s_are_not_found() -> None:
    assert isinstance(error_for(404, {"success": False, "error": "nope"}, CALL), errors.NotFound)


def test_a_lone_fastapi_detail_on_200_is_an_error() -> None:
    assert isinstance(error_for(200, {"detail": "Session not found"}, CALL), SessionLost)


def test_unknown_codes_are_engine_errors_with_the_message() -> None:
    error = error_for(200, {"code": 5123, "message": "agent busy"}, CALL)
    assert isinstance(error, EngineError)
    assert "agent busy" in str(error) and "5123" in str(error)


def test_fastapi_validation_errors_are_listed() -> None:
    body = {"detail": [{"loc": ["body", "session_id"], "msg": "field required", "type": "x"}]}
    error = error_for(422, body, CALL)
    assert isinstance(error, EngineError)
    assert "body.session_id: field required" in str(error)


def test_a_2xx_that_is_not_json_is_an_error() -> None:
    with pytest.raises(EngineError, match="not JSON"):
        errors.check(httpx.Response(200, text="<html>proxy</html>"), CALL)


# ---------------------------------------------------------------- secrets and delays


def test_tokens_in_server_messages_are_scrubbed() -> None:
    call = Call(what="do it", secrets=("s3cr3t-value",))
    body = {"code": 1001, "message": "token s3cr3t-value expired; Bearer nmv_usr_abcdefgh bad"}
    message = str(error_for(200, body, call))
    assert "s3cr3t-value" not in message
    assert "nmv_usr_abcdefgh" not in message


def test_the_call_repr_hides_secrets() -> None:
    assert "s3cr3t" not in repr(Call(what="x", secrets=("s3cr3t",)))


def test_retry_after_in_seconds_and_as_an_http_date() -> None:
    now = datetime(2030, 1, 1, 12, 0, 0, tzinfo=UTC)
    assert errors.parse_retry_after("17", now=now) == 17.0
    assert errors.parse_retry_after("Tue, 01 Jan 2030 12:01:00 GMT", now=now) == 60.0
    assert errors.parse_retry_after("garbage", now=now) == 30.0
    assert errors.parse_retry_after(None) == 30.0
