"""The /run_sse decoder and event interpretation (pure), and the adapter's checks."""

from __future__ import annotations

import itertools
import json
import random

import httpx
import pytest

from nemowatch.engines.nemo import errors, sse
from nemowatch.engines.nemo.sse import AgentEvent, AgentEventKind, Frame, FrameDecoder, interpret
from nemowatch.errors import AuthError, EngineError, SessionLost

K = AgentEventKind

STREAM = (
    b": keep-alive\n\n"
    + b'data: {"invocationId":"e-1","author":"nemo_agent","content":{"parts":'
    + b'[{"functionCall":{"id":"c1","name":"cut_silences","args":{"min":0.5}}}]}}\n\n'
    + b"data:\n\n"
    + b'data: {"author":"nemo_agent","partial":true,"content":{"parts":[{"text":"I cut"}]}}\n\n'
    + 'data: {"author":"nemo_agent","content":{"parts":[{"text":"I cut the silences — 3 '
    'pauses, 剪辑完成."}]}}\r\n\r\n'.encode()
    + b"data: heartbeat\r\r"
    + b'data: {"type":"heartbeat"}\n\n'
    + b'data: {"actions":{"stateDelta":{"draft_version":3}}}\n\n'
)


def decode(chunks: list[bytes]) -> list[Frame]:
    decoder = FrameDecoder()
    frames: list[Frame] = []
    for chunk in chunks:
        frames.extend(decoder.feed(chunk))
    frames.extend(decoder.close())
    return frames


def events(stream: bytes) -> list[AgentEvent]:
    return [event for frame in decode([stream]) for event in interpret(frame)]


def kinds(stream: bytes) -> list[AgentEventKind]:
    return [event.kind for event in events(stream)]


# ---------------------------------------------------------------- the decoder


def test_the_reference_stream_decodes_to_these_events() -> None:
    decoded = events(STREAM)
    assert [event.kind for event in decoded] == [
        K.HEARTBEAT,
        K.TOOL_CALL,
        K.HEARTBEAT,
        K.QUIET,  # the partial preview: its text comes again, complete
        K.TEXT,
        K.HEARTBEAT,
        K.HEARTBEAT,
        K.QUIET,  # actions only
    ]
    assert decoded[1].name == "cut_silences"
    assert decoded[1].data["args"] == {"min": 0.5}
    assert decoded[4].text == "I cut the silences — 3 pauses, 剪辑完成."


def test_a_split_at_every_byte_boundary_gives_the_same_frames() -> None:
    whole = decode([STREAM])
    for cut in range(1, len(STREAM)):
        assert decode([STREAM[:cut], STREAM[cut:]]) == whole, f"split at byte {cut}"


def test_one_byte_at_a_time_gives_the_same_frames() -> None:
    assert decode([STREAM[index : index + 1] for index in range(len(STREAM))]) == decode([STREAM])


def test_random_chunkings_give_the_same_frames() -> None:
    whole = decode([STREAM])
    chance = random.Random(7)
    for _ in range(300):
        cuts = sorted(chance.sample(range(1, len(STREAM)), chance.randint(1, 12)))
        bounds = [0, *cuts, len(STREAM)]
        chunks = [STREAM[start:end] for start, end in itertools.pairwise(bounds)]
        assert decode(chunks) == whole


def test_multi_line_data_is_joined_with_newlines() -> None:
    assert decode([b"data: a\ndata: b\n\n"]) == [Frame(data="a\nb")]


def test_a_last_event_without_its_blank_line_is_kept() -> None:
    assert decode([b'data: {"error": "boom"}']) == [Frame(data='{"error": "boom"}')]


def test_event_and_id_fields_are_ignored() -> None:
    assert decode([b"event: message\nid: 7\nretry: 10\ndata: x\n\n"]) == [Frame(data="x")]


# ---------------------------------------------------------------- heartbeats


@pytest.mark.parametrize(
    "stream",
    [
        b"data:\n\n",
        b"data: \n\n",
        b"data: heartbeat\n\n",
        b'data: {"type":"heartbeat"}\n\n',
        b":\n",
    ],
    ids=["empty", "empty-space", "word", "json", "comment"],
)
def test_every_heartbeat_form_is_a_heartbeat(stream: bytes) -> None:
    assert kinds(stream) == [K.HEARTBEAT]


# ---------------------------------------------------------------- interpretation


def test_text_comes_only_from_complete_events() -> None:
    stream = (
        b'data: {"partial":true,"content":{"parts":[{"text":"Hel"}]}}\n\n'
        b'data: {"partial":true,"content":{"parts":[{"text":"Hello"}]}}\n\n'
        b'data: {"partial":false,"content":{"parts":[{"text":"Hello there"}]}}\n\n'
    )
    texts = [event.text for event in events(stream) if event.kind is K.TEXT]
    assert texts == ["Hello there"]


def test_thoughts_are_not_text() -> None:
    stream = (
        b'data: {"content":{"parts":[{"text":"let me think","thought":true},'
        b'{"text":"Trimmed to 60 s."}]}}\n\n'
    )
    assert [event.text for event in events(stream) if event.kind is K.TEXT] == ["Trimmed to 60 s."]


def test_snake_case_keys_are_read_too() -> None:
    stream = (
        b'data: {"content":{"parts":[{"function_call":{"name":"add_music","args":{}}}]}}\n\n'
        b'data: {"content":{"parts":[{"function_response":{"name":"add_music"}}]}}\n\n'
        b'data: {"error_code":"MODEL_ERROR","error_message":"overloaded"}\n\n'
    )
    decoded = events(stream)
    assert [event.kind for event in decoded] == [K.TOOL_CALL, K.TOOL_RESULT, K.ERROR]
    assert decoded[2].text == "overloaded"


def test_camel_case_model_errors_are_errors() -> None:
    decoded = events(b'data: {"errorCode":"SAFETY","errorMessage":"blocked by policy"}\n\n')
    assert decoded == [AgentEvent(K.ERROR, text="blocked by policy", data={"code": "SAFETY"})]


def test_an_error_frame_in_valid_json_is_an_error() -> None:
    assert events(b'data: {"error": "Agent failed: quota"}\n\n') == [
        AgentEvent(K.ERROR, text="Agent failed: quota")
    ]


def test_an_unescaped_legacy_error_frame_is_still_an_error() -> None:
    decoded = events(b'data: {"error": "tool "edit" raised: bad \\ path"}\n\n')
    assert [event.kind for event in decoded] == [K.ERROR]
    assert decoded[0].text == 'tool "edit" raised: bad \\ path'


def test_a_legacy_error_cut_by_a_raw_newline_keeps_its_first_line() -> None:
    decoded = events(b'data: {"error": "first line\nsecond line"}\n\n')
    assert [event.kind for event in decoded] == [K.ERROR]
    assert decoded[0].text == "first line"


def test_events_without_content_are_quiet() -> None:
    assert kinds(b'data: {"author":"nemo_agent","actions":{"stateDelta":{}}}\n\n') == [K.QUIET]


def test_unparseable_data_is_unknown_not_an_error() -> None:
    assert kinds(b"data: [DONE]\n\n") == [K.UNKNOWN]


def test_events_written_without_blank_lines_between_them_are_read_one_by_one() -> None:
    one = json.dumps({"content": {"parts": [{"text": "one"}]}})
    two = json.dumps({"content": {"parts": [{"text": "two"}]}})
    stream = f"data: {one}\ndata: {two}\n\n".encode()
    assert [event.text for event in events(stream)] == ["one", "two"]


# ---------------------------------------------------------------- the adapter


async def open_with(response: httpx.Response) -> sse.EventStream:
    client = httpx.AsyncClient(
        base_url="https://api.test", transport=httpx.MockTransport(lambda request: response)
    )
    return await sse.open_event_stream(
        client,
        "/run_sse",
        body={"x": 1},
        headers={},
        timeout=httpx.Timeout(5.0),
        call=errors.Call(what="send the instruction"),
    )


async def test_a_plain_json_404_before_the_stream_is_a_lost_session() -> None:
    with pytest.raises(SessionLost):
        await open_with(httpx.Response(404, json={"detail": "Session not found"}))


async def test_a_plain_json_401_before_the_stream_is_an_auth_error() -> None:
    with pytest.raises(AuthError):
        await open_with(httpx.Response(401, json={"detail": "Not authenticated"}))


async def test_a_422_before_the_stream_is_an_engine_error() -> None:
    body = {"detail": [{"loc": ["body", "new_message"], "msg": "field required"}]}
    with pytest.raises(EngineError, match="new_message"):
        await open_with(httpx.Response(422, json=body))


async def test_a_200_that_is_not_an_event_stream_is_refused_before_reading() -> None:
    with pytest.raises(EngineError, match="not an event stream"):
        await open_with(httpx.Response(200, json={"code": 0, "data": {}}))


async def test_a_200_with_an_error_code_instead_of_a_stream_raises_that_error() -> None:
    with pytest.raises(AuthError):
        await open_with(httpx.Response(200, json={"code": 1001, "message": "expired"}))


async def test_an_event_stream_is_read_frame_by_frame() -> None:
    stream = await open_with(
        httpx.Response(200, headers={"content-type": "text/event-stream"}, content=STREAM)
    )
    frames = [frame async for frame in stream.frames()]
    await stream.aclose()
    assert frames == decode([STREAM])
