"""An edit: the event stream as EditEvents, and never a charged instruction sent twice."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from nemowatch.engines.base import EditEvent, EditEventKind, Session
from nemowatch.engines.nemo import NemoEngine
from nemowatch.engines.nemo.edit import Turn
from nemowatch.engines.nemo.sse import AgentEvent, AgentEventKind
from nemowatch.errors import EngineError, SessionLost
from tests.unit.test_nemo_fakeapi import (
    BASE_URL,
    START_DRAFT,
    Clock,
    FakeApi,
    Sleeps,
    call_event,
    connect_error,
    make_engine,
    rate_limited,
    result_event,
    server_error,
    sse,
    text_event,
)
from tests.unit.test_nemo_fakeapi import Turn as Script

HEARTBEAT = AgentEvent(AgentEventKind.HEARTBEAT)
INSTRUCTION = "cut out silences and add lofi music"


@pytest.fixture
def fake() -> FakeApi:
    return FakeApi()


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def engine(fake: FakeApi, tmp_path: Path, sleeps: Sleeps, clock: Clock) -> NemoEngine:
    return make_engine(fake, tmp_path, sleep=sleeps, clock=clock)


def open_session(fake: FakeApi) -> Session:
    session_id = fake.new_session({**START_DRAFT})
    return Session(id=session_id, data={"session_id": session_id, "job_id": "job1"})


async def run(engine: NemoEngine, session: Session) -> list[EditEvent]:
    try:
        return [event async for event in engine.edit(session, INSTRUCTION)]
    finally:
        await engine.close()


def texts(events: list[EditEvent]) -> list[str]:
    return [event.text for event in events if event.kind is EditEventKind.TEXT]


# ---------------------------------------------------------------- the turn (pure)


def test_still_working_is_reported_after_every_two_minutes_of_silence() -> None:
    turn = Turn(started=0.0, limit=900.0)
    reported = [
        now
        for now in (30, 60, 119, 120, 121, 200, 239, 241, 300, 365)
        if turn.on_event(HEARTBEAT, now)
    ]
    assert reported == [120, 241, 365]


def test_text_and_tool_calls_break_the_silence() -> None:
    turn = Turn(started=0.0, limit=900.0)
    turn.on_event(AgentEvent(AgentEventKind.TOOL_CALL, name="cut"), 100.0)
    assert turn.on_event(HEARTBEAT, 219.0) == []
    assert [event.kind for event in turn.on_event(HEARTBEAT, 220.0)] == [EditEventKind.PROGRESS]


def test_a_turn_is_overdue_after_its_limit() -> None:
    turn = Turn(started=10.0, limit=900.0)
    assert not turn.overdue(910.0)
    assert turn.overdue(910.5)


def test_an_error_event_fails_the_turn_with_its_message() -> None:
    turn = Turn(started=0.0, limit=900.0)
    with pytest.raises(EngineError, match="blocked by policy"):
        turn.on_event(AgentEvent(AgentEventKind.ERROR, text="blocked by policy"), 1.0)


def test_an_export_hint_becomes_ready_to_export_once() -> None:
    turn = Turn(started=0.0, limit=900.0)
    first = turn.on_event(AgentEvent(AgentEventKind.TEXT, text="Done. Click Export!"), 1.0)
    second = turn.on_event(AgentEvent(AgentEventKind.TEXT, text="Click Export."), 2.0)
    assert [event.text for event in first] == ["Done.", "The draft is ready to export."]
    assert second == []


# ---------------------------------------------------------------- whole turns


async def test_a_turn_with_text_yields_tools_and_text(engine: NemoEngine, fake: FakeApi) -> None:
    events = await run(engine, open_session(fake))
    assert [event.kind for event in events] == [
        EditEventKind.TOOL,
        EditEventKind.TOOL,
        EditEventKind.TEXT,
    ]
    assert events[0].text == "edit_timeline"
    assert texts(events) == ["Done."]
    body = fake.requests[1].content
    assert b'"app_name":"nemo_agent"' in body.replace(b" ", b"")
    assert b'"new_message":{"parts":[{"text":' in body.replace(b" ", b"")


async def test_gui_speak_is_never_shown(engine: NemoEngine, fake: FakeApi) -> None:
    fake.turns.append(
        Script(chunks=[sse(text_event("Added music. Open the panel to adjust it. Click Export!"))])
    )
    events = await run(engine, open_session(fake))
    assert texts(events) == ["Added music.", "The draft is ready to export."]


async def test_a_turn_without_text_is_confirmed_from_the_state(
    engine: NemoEngine, fake: FakeApi
) -> None:
    fake.turns.append(Script(chunks=[sse(call_event()), sse(result_event())]))
    events = await run(engine, open_session(fake))
    assert texts(events) == ["Done. Timeline (1 track): video 0–12.5 s"]


async def test_a_turn_without_text_that_changed_nothing_is_a_warning(
    engine: NemoEngine, fake: FakeApi
) -> None:
    fake.turns.append(Script(chunks=[sse(call_event())], apply=False))
    events = await run(engine, open_session(fake))
    assert events[-1].kind is EditEventKind.WARNING
    assert INSTRUCTION in events[-1].text


async def test_partial_previews_and_thoughts_are_not_shown(
    engine: NemoEngine, fake: FakeApi
) -> None:
    fake.turns.append(
        Script(
            chunks=[
                sse(text_event("Cut", partial=True)),
                sse(text_event("planning the cut", thought=True)),
                sse(text_event("Cut 3 pauses.")),
            ]
        )
    )
    assert texts(await run(engine, open_session(fake))) == ["Cut 3 pauses."]


@pytest.mark.parametrize(
    "frame",
    [
        b'data: {"error": "Agent failed: tool raised"}\n\n',
        b'data: {"error": "Agent failed: tool "edit" raised"}\n\n',
        b'data: {"errorCode":"MODEL_ERROR","errorMessage":"Agent failed: tool raised"}\n\n',
    ],
    ids=["json", "legacy", "model"],
)
async def test_an_error_in_the_stream_fails_the_edit_with_its_message(
    engine: NemoEngine, fake: FakeApi, frame: bytes
) -> None:
    fake.turns.append(Script(chunks=[sse(call_event()), frame], apply=False))
    with pytest.raises(EngineError, match="Agent failed: tool"):
        await run(engine, open_session(fake))
    assert len(fake.instructions) == 1


# ---------------------------------------------------------------- never charged twice


async def test_a_stream_dropped_after_the_edit_landed_succeeds_without_resending(
    engine: NemoEngine, fake: FakeApi, sleeps: Sleeps
) -> None:
    fake.turns.append(Script(drop_after=1, apply=True))
    events = await run(engine, open_session(fake))
    assert len(fake.instructions) == 1
    assert fake.count("run_sse") == 1
    assert texts(events)[-1].startswith("Done. Timeline")
    assert sleeps.delays == [2.0]


async def test_a_stream_dropped_before_the_edit_landed_fails_without_resending(
    engine: NemoEngine, fake: FakeApi, sleeps: Sleeps
) -> None:
    fake.turns.append(Script(drop_after=1, apply=False))
    with pytest.raises(EngineError, match="sent but did not land; not re-sent") as raised:
        await run(engine, open_session(fake))
    assert raised.value.retryable is False
    assert fake.count("run_sse") == 1
    assert sleeps.delays == [2.0, 5.0, 10.0, 30.0]
    assert fake.count("state") == 1 + 4  # the checkpoint, then one read per wait


async def test_a_read_timeout_before_the_stream_started_is_not_resent(
    engine: NemoEngine, fake: FakeApi
) -> None:
    request = httpx.Request("POST", BASE_URL + "/run_sse")
    fake.fail("run_sse", httpx.ReadTimeout("timed out", request=request))
    with pytest.raises(EngineError, match="not re-sent"):
        await run(engine, open_session(fake))
    assert fake.count("run_sse") == 1


async def test_a_server_error_before_the_stream_is_sent_again_when_the_draft_is_unchanged(
    engine: NemoEngine, fake: FakeApi, sleeps: Sleeps
) -> None:
    fake.fail("run_sse", server_error(503))
    events = await run(engine, open_session(fake))
    assert texts(events) == ["Done."]
    assert fake.count("run_sse") == 2
    assert len(fake.instructions) == 1
    assert sleeps.delays == [1.0]


async def test_a_connect_error_is_sent_again(
    engine: NemoEngine, fake: FakeApi, sleeps: Sleeps
) -> None:
    fake.fail("run_sse", connect_error())
    assert texts(await run(engine, open_session(fake))) == ["Done."]
    assert fake.count("run_sse") == 2


async def test_a_rate_limit_before_the_stream_waits_then_sends_again(
    engine: NemoEngine, fake: FakeApi, sleeps: Sleeps
) -> None:
    fake.fail("run_sse", rate_limited("12"))
    assert texts(await run(engine, open_session(fake))) == ["Done."]
    assert sleeps.delays == [12.0]
    assert len(fake.instructions) == 1


async def test_an_error_status_after_the_draft_changed_is_not_sent_again(
    engine: NemoEngine, fake: FakeApi
) -> None:
    session = open_session(fake)

    def applied_then_failed(request: httpx.Request) -> httpx.Response:
        fake.sessions[session.id]["draft"]["m"]["edits"] = ["applied"]
        return server_error(502)

    fake.fail("run_sse", applied_then_failed)
    events = await run(engine, session)
    assert fake.count("run_sse") == 1
    assert texts(events)[0].startswith("Done. Timeline")


async def test_a_504_is_treated_as_possibly_delivered(engine: NemoEngine, fake: FakeApi) -> None:
    fake.fail("run_sse", server_error(504))
    with pytest.raises(EngineError, match="not re-sent"):
        await run(engine, open_session(fake))
    assert fake.count("run_sse") == 1


async def test_a_lost_session_before_the_stream_is_session_lost(
    engine: NemoEngine, fake: FakeApi
) -> None:
    session = open_session(fake)
    fake.fail("run_sse", httpx.Response(404, json={"detail": "Session not found"}))
    with pytest.raises(SessionLost):
        await run(engine, session)


async def test_a_refused_token_is_renewed_and_the_instruction_sent_once(
    fake: FakeApi, tmp_path: Path
) -> None:
    engine = make_engine(fake, tmp_path, token=None)
    session = open_session(fake)
    await engine.credits()  # obtains the anonymous token
    fake.valid_tokens = {token for token in fake.valid_tokens if "0001" not in token}
    fake.auth_style = "http"
    events = await run(engine, session)
    assert texts(events) == ["Done."]
    assert len(fake.instructions) == 1
    assert fake.issued == 2


# ---------------------------------------------------------------- time


async def test_a_long_silent_turn_reports_still_working_every_two_minutes(
    engine: NemoEngine, fake: FakeApi, clock: Clock
) -> None:
    def later() -> None:
        clock.advance(70)

    heartbeats: list[bytes | Callable[[], None]] = []
    for _ in range(5):  # 5 keep-alives, 70 s apart: 350 s of silence
        heartbeats += [later, b": ping\n\n"]
    fake.turns.append(Script(chunks=[*heartbeats, sse(text_event("Done."))]))
    events = await run(engine, open_session(fake))
    progress = [event.text for event in events if event.kind is EditEventKind.PROGRESS]
    assert progress == ["still working (2 min)", "still working (5 min)"]  # at 140 s, 280 s
    assert texts(events) == ["Done."]


async def test_a_turn_past_the_edit_timeout_is_abandoned_and_checked_not_resent(
    fake: FakeApi, tmp_path: Path, clock: Clock, sleeps: Sleeps
) -> None:
    engine = make_engine(fake, tmp_path, clock=clock, sleep=sleeps, edit_timeout=600.0)

    def much_later() -> None:
        clock.advance(601)

    fake.turns.append(Script(chunks=[b": ping\n\n", much_later, b": ping\n\n"], apply=False))
    with pytest.raises(EngineError, match="did not finish within 10 min"):
        await run(engine, open_session(fake))
    assert fake.count("run_sse") == 1


async def test_the_checkpoint_changes_when_an_edit_lands(engine: NemoEngine, fake: FakeApi) -> None:
    session = open_session(fake)
    before = await engine.edit_checkpoint(session)
    assert await engine.edit_checkpoint(session) == before
    _ = [event async for event in engine.edit(session, INSTRUCTION)]
    after = await engine.edit_checkpoint(session)
    await engine.close()
    assert after != before
