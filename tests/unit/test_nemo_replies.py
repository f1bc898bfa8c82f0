"""NemoVideo's replies as models: every documented form accepted, anything else named.

The forms are those of shared/nemo-api.md and of tests/fakes/nemo_variants.py; an answer
that leaves nothing to act on is `UnexpectedReply`, naming the endpoint and the field.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from nemowatch.engines.base import RenderState
from nemowatch.engines.nemo.errors import UnexpectedReply
from nemowatch.engines.nemo.kept import (
    NemoMediaState,
    NemoRenderProgress,
    NemoRenderState,
    NemoSessionState,
)
from nemowatch.engines.nemo.render import output_url_in, parse_status
from nemowatch.engines.nemo.replies import (
    CreditsReply,
    DraftReply,
    SessionReply,
    StateReply,
    TokenReply,
    UploadReply,
    parse,
)
from nemowatch.engines.nemo.sse import AgentEventKind, interpret_event
from nemowatch.errors import EngineError

DRAFT = {"t": [{"tt": 0, "sg": [{"at": 0, "d": 12500}]}], "d": 12500, "m": {}}


def unexpected(model: Any, data: Any, endpoint: str = "test") -> str:
    with pytest.raises(UnexpectedReply) as raised:
        parse(model, data, endpoint=endpoint)
    return str(raised.value)


# ---------------------------------------------------------------- the one error


def test_an_unexpected_shape_is_a_retryable_engine_error_naming_endpoint_and_field() -> None:
    with pytest.raises(UnexpectedReply) as raised:
        parse(SessionReply, {"task_id": "t1"}, endpoint="new-session")
    error = raised.value
    assert isinstance(error, EngineError)
    assert error.retryable is True
    assert str(error) == "NemoVideo's new-session answer: session_id is missing"
    assert (error.endpoint, error.field) == ("new-session", "session_id")


def test_an_answer_that_is_not_an_object_is_named_as_the_answer() -> None:
    assert unexpected(CreditsReply, [1, 2], "credits") == (
        "NemoVideo's credits answer: the answer is not an object"
    )


def test_the_field_of_a_nested_problem_is_its_path() -> None:
    assert unexpected(UploadReply, {"files": ["clip.mp4"]}, "upload") == (
        "NemoVideo's upload answer: files.0 is not an object"
    )


def test_the_message_never_quotes_the_answer() -> None:
    message = unexpected(SessionReply, {"session_id": {"token": "nmv_usr_secret123456"}})
    assert "nmv_" not in message
    assert message == "NemoVideo's test answer: session_id is not text"


# ---------------------------------------------------------------- token, session, credits


@pytest.mark.parametrize(
    "data",
    [
        {"token": "nmv_usr_x", "user_id": "anon_1", "expires_at": "2030-01-08T00:00:00Z"},
        {"token": "nmv_usr_x", "userId": "anon_1", "expiresAt": "2030-01-08T00:00:00Z"},
    ],
    ids=["snake", "camel"],
)
def test_the_anonymous_token_in_either_case(data: dict[str, Any]) -> None:
    reply = parse(TokenReply, {**data, "credits": "100"}, endpoint="anonymous-token")
    assert (reply.token, reply.user_id, reply.expires_at) == (
        "nmv_usr_x",
        "anon_1",
        "2030-01-08T00:00:00Z",
    )
    assert reply.credits == 100.0


def test_an_empty_token_is_unexpected() -> None:
    assert unexpected(TokenReply, {"token": ""}, "anonymous-token") == (
        "NemoVideo's anonymous-token answer: token is empty"
    )


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({"task_id": "t1", "session_id": "7300000001"}, ("t1", "7300000001", None)),
        ({"taskId": "t1", "sessionId": 7300000001, "userId": "u1"}, ("t1", "7300000001", "u1")),
        ({"session_id": "42", "user_id": ""}, (None, "42", None)),
    ],
    ids=["snake", "camel-int-id", "blank-user"],
)
def test_a_new_session_in_every_documented_form(
    data: dict[str, Any], expected: tuple[str | None, str, str | None]
) -> None:
    reply = parse(SessionReply, data, endpoint="new-session")
    assert (reply.task_id, reply.session_id, reply.user_id) == expected


def test_a_blank_session_id_is_missing() -> None:
    assert unexpected(SessionReply, {"sessionId": "  "}, "new-session") == (
        "NemoVideo's new-session answer: sessionId is missing"
    )


def test_credits_written_as_strings_are_numbers() -> None:
    reply = parse(CreditsReply, {"available": "90", "frozen": 10, "total": "garbled"}, endpoint="c")
    assert (reply.available, reply.frozen, reply.total) == (90.0, 10.0, None)


# ---------------------------------------------------------------- upload


@pytest.mark.parametrize(
    "entry",
    [
        {"filename": "a.mp4", "file_type": "video", "cdn_url": "https://c/a", "duration": 12.5},
        {"filename": "a.mp4", "fileType": "video", "cdnUrl": "https://c/a", "duration": "12.5"},
    ],
    ids=["snake", "camel-strings"],
)
def test_an_uploaded_file_in_either_case(entry: dict[str, Any]) -> None:
    data = {
        "files": [{**entry, "width": "1920", "height": 1080, "fps": "29.97", "hash": "h"}],
        "session_state_applied": True,
    }
    reply = parse(UploadReply, data, endpoint="upload")
    first = reply.files[0]
    assert (first.file_type, first.cdn_url, first.duration) == ("video", "https://c/a", 12.5)
    assert (first.width, first.height, first.fps) == (1920.0, 1080.0, 29.97)
    assert reply.session_state_applied is True


def test_an_upload_that_lists_no_file_is_unexpected() -> None:
    assert unexpected(UploadReply, {"files": []}, "upload") == (
        "NemoVideo's upload answer: files is empty"
    )
    assert unexpected(UploadReply, {"session_state_applied": True}, "upload") == (
        "NemoVideo's upload answer: files is missing"
    )


# ---------------------------------------------------------------- state


@pytest.mark.parametrize(
    "data",
    [
        {"state": {"draft": DRAFT, "video_infos": []}},
        {"state": {"draft": json.dumps(DRAFT)}},
        {"session_id": "1", "draft": DRAFT},  # the state's keys without `state`
    ],
    ids=["object", "json-string", "no-state-key"],
)
def test_the_draft_in_every_documented_form(data: dict[str, Any]) -> None:
    assert parse(StateReply, data, endpoint="session state").draft == DRAFT


@pytest.mark.parametrize(
    "data",
    [{"state": {}}, {"state": {"draft": ""}}, {"state": {"draft": None}}, {"state": None}],
    ids=["absent", "empty-string", "null", "null-state"],
)
def test_a_session_without_a_draft_yet(data: dict[str, Any]) -> None:
    assert parse(StateReply, data, endpoint="session state").draft is None


def test_a_draft_that_is_not_json_is_unexpected() -> None:
    assert unexpected(StateReply, {"state": {"draft": "{t:"}}, "session state") == (
        "NemoVideo's session state answer: draft is not valid JSON"
    )
    assert unexpected(StateReply, {"state": {"draft": [1]}}, "session state") == (
        "NemoVideo's session state answer: draft is not an object"
    )


# ---------------------------------------------------------------- render


URL = "https://files.test/render_1.mp4"


@pytest.mark.parametrize(
    "data",
    [
        {"id": "r1", "status": "completed", "progress": 100, "outputUrl": URL},
        {"taskId": "r1", "status": "completed", "progress": "100", "output": {"url": URL}},
        {"done": True, "overallProgress": 1.0, "outputFile": URL, "errors": []},
    ],
    ids=["A", "B", "C"],
)
def test_a_completed_render_in_each_shape(data: dict[str, Any]) -> None:
    polled = parse_status(data)
    assert (polled.state, polled.progress, polled.url) == (RenderState.COMPLETED, 100.0, URL)


def test_shape_b_carries_size_and_duration_as_numbers_or_strings() -> None:
    polled = parse_status(
        {"status": "completed", "output": {"url": URL, "size": "15728640", "duration": "30.5"}}
    )
    assert (polled.size, polled.duration) == (15728640, 30.5)


def test_remotion_errors_that_will_be_retried_are_not_failures() -> None:
    data = {
        "done": False,
        "overallProgress": 0.4,
        "errors": [
            {"message": "chunk 3 timed out", "isFatal": False, "willRetry": True},
            {"message": "chunk 4 timed out", "willRetry": True},
        ],
    }
    polled = parse_status(data)
    assert (polled.state, polled.progress) == (RenderState.PROCESSING, 40.0)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"status": "failed", "error": "out of memory"}, "out of memory"),
        ({"status": "failed", "error": {"message": "bad draft"}}, "bad draft"),
        ({"fatalErrorEncountered": True, "errors": [{"message": "boom", "isFatal": True}]}, "boom"),
        ({"done": False, "errors": ["plain words"]}, "plain words"),
    ],
    ids=["text", "object", "remotion", "remotion-text"],
)
def test_a_failed_render_says_why(data: dict[str, Any], message: str) -> None:
    polled = parse_status(data)
    assert (polled.state, polled.error) == (RenderState.FAILED, message)


def test_an_unknown_status_is_still_running() -> None:
    assert parse_status({"status": "rendering", "progress": "55"}).state is RenderState.PROCESSING


def test_a_render_status_that_is_not_an_object_is_unexpected() -> None:
    with pytest.raises(UnexpectedReply, match=r"^NemoVideo's render status answer: the answer"):
        parse_status("<html>")


@pytest.mark.parametrize(
    "body",
    [
        {"output": {"url": URL}},
        {"success": True, "data": {"output": {"url": URL}}},
        {"code": 0, "data": {"outputUrl": URL}},
        {"id": "r1", "url": URL},
    ],
    ids=["bare", "success-envelope", "code-envelope", "url"],
)
def test_the_download_link_in_a_json_answer(body: dict[str, Any]) -> None:
    assert output_url_in(body) == URL


def test_no_download_link_is_none() -> None:
    assert output_url_in({"error": "AccessDenied", "message": "Request has expired"}) is None


# ---------------------------------------------------------------- /run_sse events


def test_an_event_of_an_undocumented_shape_is_unknown_and_named() -> None:
    events = interpret_event({"content": {"parts": [{"text": ["not", "text"]}]}})
    assert [event.kind for event in events] == [AgentEventKind.UNKNOWN]
    assert events[0].text.startswith("NemoVideo's /run_sse event answer: content.parts.0.text")


def test_content_that_is_not_an_object_is_quiet() -> None:
    assert [event.kind for event in interpret_event({"content": "hi"})] == [AgentEventKind.QUIET]


# ---------------------------------------------------------------- kept state


@pytest.mark.parametrize(
    "kept",
    [
        NemoSessionState(session_id="1001", task_id="t", user_id=None, job_id="job1"),
        NemoMediaState(file_type="video", cdn_url="https://c/a", hash="h"),
        NemoRenderState(job_id="job1", session_id="1001", format="mp4", quality="high", n=2),
        NemoRenderProgress(url=URL),
    ],
    ids=["session", "media", "render", "progress"],
)
def test_kept_state_round_trips_through_plain_json(kept: Any) -> None:
    dumped = kept.dump()
    assert json.loads(json.dumps(dumped)) == dumped
    assert type(kept).load(dumped) == kept


def test_a_render_keeps_the_keys_the_ledger_always_had() -> None:
    state = NemoRenderState(job_id="job1", session_id="1001", format="mp4", quality="high", n=1)
    assert state.dump() == {
        "job_id": "job1",
        "session_id": "1001",
        "format": "mp4",
        "quality": "high",
        "n": 1,
    }


def test_session_state_from_an_older_ledger_loads() -> None:
    loaded = NemoSessionState.load({"session_id": "1001", "job_id": "job1", "extra": 1})
    assert (loaded.session_id, loaded.job_id, loaded.task_id) == ("1001", "job1", None)


def test_render_progress_keeps_only_what_is_known() -> None:
    assert NemoRenderProgress().dump() == {}
    assert NemoRenderProgress(download="/d").dump() == {"download": "/d"}


def test_a_draft_with_missing_null_or_odd_keys_reads_as_empty() -> None:
    read = DraftReply.model_validate({"t": [{"tt": 0, "sg": []}, "junk"], "d": "1500", "m": None})
    assert (read.tracks, read.duration_ms, read.metadata, read.ready) == (
        [{"tt": 0, "sg": []}],
        1500.0,
        {},
        False,
    )
    assert DraftReply.model_validate({"t": None}).tracks == []
