"""An edit: the event stream as EditEvents, and never a charged instruction sent twice."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from nemowatch.engines.base import EditEvent, EditEventKind, Session
from nemowatch.engines.nemo import NemoEngine
from nemowatch.engines.nemo.edit import Turn, landing_waits, run_body
from nemowatch.engines.nemo.sse import AgentEvent, AgentEventKind
from nemowatch.errors import EngineError, SessionLost
from tests.fakes.nemo_kit import (
    DEFAULT_TURN,
    Clock,
    ConnectFailures,
    Sleeps,
    Wall,
    call_event,
    make_engine,
    result_event,
    serving,
    session_in,
    sse,
    text_event,
)
from tests.fakes.nemo_server import Endpoint, ErrorStyle, FakeNemo, Fault

HEARTBEAT = AgentEvent(AgentEventKind.HEARTBEAT)
INSTRUCTION = "cut out silences and add lofi music"
PING = b": ping\n\n"


@pytest.fixture
def fake(tmp_path: Path) -> Iterator[FakeNemo]:
    with serving(tmp_path) as server:
        yield server


@pytest.fixture
def token(fake: FakeNemo) -> str:
    return fake.mint_token()


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def engine(fake: FakeNemo, tmp_path: Path, sleeps: Sleeps, clock: Clock, token: str) -> NemoEngine:
    return make_engine(fake, tmp_path, sleep=sleeps, clock=clock, token=token)


async def run(engine: NemoEngine, session: Session) -> list[EditEvent]:
    try:
        return [event async for event in engine.edit(session, INSTRUCTION)]
    finally:
        await engine.close()


def texts(events: list[EditEvent]) -> list[str]:
    return [event.text for event in events if event.kind is EditEventKind.TEXT]


def sent(fake: FakeNemo) -> int:
    """POST /run_sse requests that reached the fake."""
    return len(fake.books.requests_to(Endpoint.RUN_SSE))


def instructions(fake: FakeNemo, session: Session) -> list[str]:
    """The instructions the fake processed (landed or not)."""
    return [record.text for record in fake.books.instructions.get(session.id, [])]


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


def test_the_body_is_adks_snake_case_run_request() -> None:
    assert run_body("42", "cut") == {
        "app_name": "nemo_agent",
        "user_id": "me",
        "session_id": "42",
        "new_message": {"parts": [{"text": "cut"}]},
    }


async def test_a_turn_with_text_yields_tools_and_text(
    engine: NemoEngine, fake: FakeNemo, token: str
) -> None:
    fake.script_turn(*DEFAULT_TURN)
    session = session_in(fake, token)
    events = await run(engine, session)
    assert [event.kind for event in events] == [
        EditEventKind.TOOL,
        EditEventKind.TOOL,
        EditEventKind.TEXT,
    ]
    assert events[0].text == "edit_timeline"
    assert texts(events) == ["Done."]
    assert fake.books.applied_instructions(session.id) == [INSTRUCTION]


async def test_gui_speak_is_never_shown(engine: NemoEngine, fake: FakeNemo, token: str) -> None:
    fake.script_turn(sse(text_event("Added music. Open the panel to adjust it. Click Export!")))
    events = await run(engine, session_in(fake, token))
    assert texts(events) == ["Added music.", "The draft is ready to export."]


async def test_a_turn_without_text_is_confirmed_from_the_state(
    engine: NemoEngine, fake: FakeNemo, token: str
) -> None:
    fake.script_turn(sse(call_event()), sse(result_event()))
    events = await run(engine, session_in(fake, token))
    (said,) = texts(events)
    assert said.startswith("Done. Timeline (")


async def test_a_turn_without_text_that_changed_nothing_is_a_warning(
    engine: NemoEngine, fake: FakeNemo, token: str
) -> None:
    fake.script_turn(sse(call_event()), apply=False)
    events = await run(engine, session_in(fake, token))
    assert events[-1].kind is EditEventKind.WARNING
    assert INSTRUCTION in events[-1].text


async def test_partial_previews_and_thoughts_are_not_shown(
    engine: NemoEngine, fake: FakeNemo, token: str
) -> None:
    fake.script_turn(
        sse(text_event("Cut", partial=True)),
        sse(text_event("planning the cut", thought=True)),
        sse(text_event("Cut 3 pauses.")),
    )
    assert texts(await run(engine, session_in(fake, token))) == ["Cut 3 pauses."]


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
    engine: NemoEngine, fake: FakeNemo, token: str, frame: bytes
) -> None:
    fake.script_turn(sse(call_event()), frame, apply=False)
    session = session_in(fake, token)
    with pytest.raises(EngineError, match="Agent failed: tool"):
        await run(engine, session)
    assert instructions(fake, session) == [INSTRUCTION]


# ---------------------------------------------------------------- never charged twice


async def test_a_stream_dropped_after_the_edit_landed_succeeds_without_resending(
    engine: NemoEngine, fake: FakeNemo, token: str, sleeps: Sleeps
) -> None:
    fake.script_turn(*DEFAULT_TURN, apply=True)
    fake.faults.next(Fault.DROP_STREAM, Endpoint.RUN_SSE, after_events=1)
    session = session_in(fake, token)
    events = await run(engine, session)
    assert instructions(fake, session) == [INSTRUCTION]
    assert sent(fake) == 1
    assert texts(events)[-1].startswith("Done. Timeline")
    assert sleeps.delays == [2.0]


async def test_a_stream_dropped_before_the_edit_landed_fails_without_resending(
    engine: NemoEngine, fake: FakeNemo, token: str, sleeps: Sleeps
) -> None:
    fake.script_turn(*DEFAULT_TURN, apply=False)
    fake.faults.next(Fault.DROP_STREAM, Endpoint.RUN_SSE, after_events=1)
    with pytest.raises(EngineError, match="did not land within 5 min") as raised:
        await run(engine, session_in(fake, token))
    assert raised.value.retryable is False
    assert "not re-sent" in str(raised.value)
    assert "drop the file again" not in (raised.value.hint or "")
    assert sent(fake) == 1
    # the landing window (nemo.landing_window, 300 s): waits doubling up to 30 s
    assert sleeps.delays == [2.0, 4.0, 8.0, 16.0, *[30.0] * 9]
    assert len(fake.books.requests_to(Endpoint.STATE)) == 1 + 13  # the checkpoint, then 13


async def test_a_read_timeout_before_the_stream_started_is_not_resent(
    fake: FakeNemo, tmp_path: Path, token: str
) -> None:
    engine = make_engine(fake, tmp_path, token=token, edit_timeout=0.2)
    fake.faults.next(Fault.SLOW, Endpoint.RUN_SSE, delay=2.0)  # no answer in time
    with pytest.raises(EngineError, match="not re-sent"):
        await run(engine, session_in(fake, token))
    fake.stop()  # cuts the slow answer short, so that the request is in the books
    assert sent(fake) == 1


async def test_a_server_error_before_the_stream_is_sent_again_when_the_draft_is_unchanged(
    engine: NemoEngine, fake: FakeNemo, token: str, sleeps: Sleeps
) -> None:
    fake.faults.next(Fault.SERVER_ERROR, Endpoint.RUN_SSE, status=503)
    fake.script_turn(*DEFAULT_TURN)
    session = session_in(fake, token)
    events = await run(engine, session)
    assert texts(events) == ["Done."]
    assert sent(fake) == 2
    assert instructions(fake, session) == [INSTRUCTION]
    assert sleeps.delays == [1.0]


async def test_a_connect_error_is_sent_again(
    fake: FakeNemo, tmp_path: Path, token: str, sleeps: Sleeps
) -> None:
    refusing = ConnectFailures(1, path="/run_sse")
    engine = make_engine(fake, tmp_path, token=token, sleep=sleeps, transport=refusing)
    fake.script_turn(*DEFAULT_TURN)
    assert texts(await run(engine, session_in(fake, token))) == ["Done."]
    assert refusing.left == 0
    assert sent(fake) == 1  # the refused one never arrived


async def test_a_rate_limit_before_the_stream_waits_then_sends_again(
    engine: NemoEngine, fake: FakeNemo, token: str, sleeps: Sleeps
) -> None:
    fake.faults.next(Fault.RATE_LIMIT, Endpoint.RUN_SSE, retry_after=12)
    fake.script_turn(*DEFAULT_TURN)
    session = session_in(fake, token)
    assert texts(await run(engine, session)) == ["Done."]
    assert sleeps.delays == [12.0]
    assert instructions(fake, session) == [INSTRUCTION]


async def test_an_error_status_after_the_draft_changed_is_not_sent_again(
    engine: NemoEngine, fake: FakeNemo, token: str
) -> None:
    fake.faults.next(Fault.LOST_ANSWER, Endpoint.RUN_SSE, status=502)  # applied, then 502
    session = session_in(fake, token)
    events = await run(engine, session)
    assert sent(fake) == 1
    assert texts(events)[0].startswith("Done. Timeline")


async def test_a_504_is_treated_as_possibly_delivered(
    engine: NemoEngine, fake: FakeNemo, token: str
) -> None:
    fake.faults.next(Fault.SERVER_ERROR, Endpoint.RUN_SSE, status=504)
    with pytest.raises(EngineError, match="not re-sent"):
        await run(engine, session_in(fake, token))
    assert sent(fake) == 1


async def test_a_lost_session_before_the_stream_is_session_lost(
    engine: NemoEngine, fake: FakeNemo, token: str
) -> None:
    session = session_in(fake, token)
    fake.faults.next(Fault.LOST_SESSION, Endpoint.RUN_SSE)
    with pytest.raises(SessionLost):
        await run(engine, session)


async def test_a_refused_token_is_renewed_and_the_instruction_sent_once(
    fake: FakeNemo, tmp_path: Path
) -> None:
    engine = make_engine(fake, tmp_path, token=None)
    await engine.credits()  # obtains the anonymous token
    (client_id,) = fake.books.tokens
    session = session_in(fake, client_id)
    fake.expire_tokens()
    fake.variants = replace(fake.variants, error_style=ErrorStyle.HTTP)
    fake.script_turn(*DEFAULT_TURN)
    events = await run(engine, session)
    assert texts(events) == ["Done."]
    assert instructions(fake, session) == [INSTRUCTION]
    assert len(fake.books.tokens[client_id]) == 2


# ---------------------------------------------------------------- time


async def test_a_long_silent_turn_reports_still_working_every_two_minutes(
    fake: FakeNemo, tmp_path: Path, token: str
) -> None:
    # 5 keep-alives, 70 s apart: 350 s of silence; then the text, at once
    clock = Clock(steps=[70, 70, 70, 70, 70, 0])
    engine = make_engine(fake, tmp_path, token=token, clock=clock)
    fake.script_turn(*[PING] * 5, sse(text_event("Done.")))
    events = await run(engine, session_in(fake, token))
    progress = [event.text for event in events if event.kind is EditEventKind.PROGRESS]
    assert progress == ["still working (2 min)", "still working (5 min)"]  # at 140 s, 280 s
    assert texts(events) == ["Done."]


async def test_a_turn_past_the_edit_timeout_is_abandoned_and_checked_not_resent(
    fake: FakeNemo, tmp_path: Path, token: str, sleeps: Sleeps
) -> None:
    clock = Clock(steps=[601])  # the first keep-alive comes after 601 s
    engine = make_engine(fake, tmp_path, token=token, clock=clock, sleep=sleeps, edit_timeout=600.0)
    fake.script_turn(PING, PING, apply=False)
    with pytest.raises(EngineError, match="did not finish within 10 min"):
        await run(engine, session_in(fake, token))
    assert sent(fake) == 1


async def test_the_checkpoint_changes_when_an_edit_lands(
    engine: NemoEngine, fake: FakeNemo, token: str
) -> None:
    session = session_in(fake, token)
    before = await engine.edit_checkpoint(session)
    assert await engine.edit_checkpoint(session) == before
    _ = [event async for event in engine.edit(session, INSTRUCTION)]
    after = await engine.edit_checkpoint(session)
    await engine.close()
    assert after != before


# ---------------------------------------------------------------- slow edits are not lost


@pytest.mark.parametrize(
    ("window", "waits"),
    [
        (300.0, (2.0, 4.0, 8.0, 16.0, *[30.0] * 9)),
        (60.0, (2.0, 4.0, 8.0, 16.0, 30.0)),
        (20.0, (2.0, 4.0, 8.0, 6.0)),
        (1.0, (1.0,)),
    ],
)
def test_the_landing_waits_back_off_and_add_up_to_the_window(
    window: float, waits: tuple[float, ...]
) -> None:
    assert landing_waits(window) == waits


class SleepsOnWall(Sleeps):
    """Sleeps that move the wall clock the fake shares: time passes only for the fake."""

    def __init__(self, wall: Wall) -> None:
        super().__init__()
        self.wall = wall

    async def __call__(self, delay: float) -> None:
        await super().__call__(delay)
        self.wall.advance(timedelta(seconds=delay))


async def test_an_edit_that_lands_three_minutes_after_the_drop_is_found_not_resent(
    tmp_path: Path,
) -> None:
    wall = Wall()
    sleeps = SleepsOnWall(wall)
    with serving(tmp_path, wall=wall) as fake:
        token = fake.mint_token()
        engine = make_engine(fake, tmp_path, token=token, sleep=sleeps, wall=wall)
        session = session_in(fake, token)
        fake.script_turn(sse(call_event()), PING, PING)
        fake.faults.next(Fault.DROP_STREAM, Endpoint.RUN_SSE, after_events=1)
        fake.land_later(180.0)
        with capture_logs() as logs:
            events = await run(engine, session)
        assert texts(events)[-1].startswith("Done. Timeline")
        assert sent(fake) == 1
        assert instructions(fake, session) == [INSTRUCTION]
        assert sum(sleeps.delays) == 180.0  # found at the first look after it landed
        # the wait is said, and said again each minute: never a silent three minutes
        [looking] = [entry for entry in logs if entry["event"] == "edit.looking"]
        assert looking["window_s"] == 300
        still = [entry["waited_s"] for entry in logs if entry["event"] == "edit.still_looking"]
        assert still == [60, 120, 180]


async def test_an_edit_that_lands_after_the_window_is_not_resent_either(
    tmp_path: Path,
) -> None:
    wall = Wall()
    sleeps = SleepsOnWall(wall)
    with serving(tmp_path, wall=wall) as fake:
        token = fake.mint_token()
        engine = make_engine(fake, tmp_path, token=token, sleep=sleeps, wall=wall)
        fake.faults.next(Fault.DROP_STREAM, Endpoint.RUN_SSE, after_events=1)
        fake.land_later(301.0)
        with pytest.raises(EngineError, match="did not land within 5 min"):
            await run(engine, session_in(fake, token))
        assert sent(fake) == 1
        assert sum(sleeps.delays) == 300.0


async def test_the_landing_window_is_the_setting(
    fake: FakeNemo, tmp_path: Path, token: str, sleeps: Sleeps
) -> None:
    engine = make_engine(fake, tmp_path, token=token, sleep=sleeps, landing_window=20.0)
    fake.faults.next(Fault.DROP_STREAM, Endpoint.RUN_SSE, after_events=1)
    fake.script_turn(*DEFAULT_TURN, apply=False)
    with pytest.raises(EngineError, match="did not land within 20 s"):
        await run(engine, session_in(fake, token))
    assert sleeps.delays == [2.0, 4.0, 8.0, 6.0]
