"""One edit: an instruction sent to `/run_sse`, its event stream turned into EditEvents.

Sending an instruction is charged, so it is sent again only when it provably never
arrived: the request failed before the stream started (a connect error, or an HTTP error
status other than 504) and the draft is unchanged. Once the stream has started, or when
the outcome is unknown (a read timeout, a reset, a 504), it is never re-sent: the draft is
read over the landing window instead (`nemo.landing_window`, with backoff, as edits take
minutes); changed means the edit landed, unchanged throughout means it failed.

`Turn` (pure) follows one turn: it filters GUI-speak, counts silence for the "still
working" line every 2 minutes, and knows whether any text was said; a turn with no text
is confirmed (or found wanting) by reading the state.

A stream is bounded: one line or event over `nemo.max_event_bytes` abandons it, and the
turn has a deadline (`nemo.edit_timeout`) on the event loop's clock that holds whether
bytes, frames or nothing arrive. Either way the instruction was delivered: it is
confirmed from the state as after a dropped stream, never re-sent.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

import httpx
import structlog

from nemowatch.engines.base import EditEvent, EditEventKind
from nemowatch.engines.nemo import errors, sse
from nemowatch.engines.nemo.client import Authorized, CallKind, NemoClient
from nemowatch.engines.nemo.speech import READY_TO_EXPORT, without_gui_speak
from nemowatch.engines.nemo.state import SessionState, read_state
from nemowatch.errors import EngineError, TransientError

log = structlog.get_logger("nemowatch.nemo")

RUN_SSE_PATH = "/run_sse"
APP_NAME = "nemo_agent"
STILL_WORKING_EVERY = 120.0  # seconds of silence between "still working" lines
# After a drop the draft is read again and again over a window that covers the service's
# generation times (minutes): waits doubling from the first, at most the longest.
LANDING_WINDOW = 300.0  # seconds (nemo.landing_window)
LANDING_FIRST_WAIT = 2.0
LANDING_LONGEST_WAIT = 30.0


def landing_waits(
    window: float, first: float = LANDING_FIRST_WAIT, longest: float = LANDING_LONGEST_WAIT
) -> tuple[float, ...]:
    """The waits before each state read after a drop: doubling from `first`, at most
    `longest`, the last one cut so that they add up to `window`. Pure."""
    waits: list[float] = []
    total, wait = 0.0, first
    while total < window:
        step = min(wait, longest, window - total)
        waits.append(step)
        total += step
        wait *= 2
    return tuple(waits)


def run_body(session_id: str, instruction: str) -> dict[str, object]:
    return {
        "app_name": APP_NAME,
        "user_id": "me",
        "session_id": session_id,
        "new_message": {"parts": [{"text": instruction}]},
    }


@dataclass
class Turn:
    """What one turn has said so far; turns agent events into EditEvents. Pure: the
    caller passes the time (`now`, seconds on any monotonic clock)."""

    started: float
    limit: float  # seconds the whole turn may take
    still_working_every: float = STILL_WORKING_EVERY
    said_text: bool = False
    export_ready: bool = False
    tools: int = 0
    last_heard: float = field(init=False)  # the last text or tool event, or a report

    def __post_init__(self) -> None:
        self.last_heard = self.started

    def overdue(self, now: float) -> bool:
        return now - self.started > self.limit

    def tick(self, now: float) -> list[EditEvent]:
        """A PROGRESS event after each `still_working_every` seconds of silence."""
        if now - self.last_heard < self.still_working_every:
            return []
        self.last_heard = now
        minutes = (now - self.started) / 60
        log.info("edit.still_working", minutes=round(minutes, 1))
        return [EditEvent(EditEventKind.PROGRESS, f"still working ({minutes:.0f} min)")]

    def on_event(self, event: sse.AgentEvent, now: float) -> list[EditEvent]:
        """The EditEvents one agent event makes; an error event raises EngineError."""
        out = self.tick(now)
        kind = event.kind
        if kind is sse.AgentEventKind.ERROR:
            raise EngineError(
                f"NemoVideo's agent failed: {errors.scrub(event.text)}",
                retryable=True,
                hint="the instruction is not sent again automatically (it would be charged"
                " twice); look at the project in NemoVideo first: `nemowatch retry` edits the"
                " file again from the start, in a new session, and is charged again",
            )
        if kind is sse.AgentEventKind.TEXT:
            spoken = without_gui_speak(event.text)
            for sentence in spoken.gui:
                log.debug("edit.gui_speak", text=sentence)
            if spoken.shown:
                self.said_text = True
                out.append(EditEvent(EditEventKind.TEXT, spoken.shown))
            if spoken.export_ready and not self.export_ready:
                self.export_ready = True
                self.said_text = True
                out.append(EditEvent(EditEventKind.TEXT, READY_TO_EXPORT, {"export_ready": True}))
            self.last_heard = now
        elif kind is sse.AgentEventKind.TOOL_CALL:
            self.tools += 1
            self.last_heard = now
            args = event.data.get("args")
            out.append(EditEvent(EditEventKind.TOOL, event.name or "?", {"args": args}))
        elif kind is sse.AgentEventKind.TOOL_RESULT:
            self.last_heard = now
            out.append(EditEvent(EditEventKind.TOOL, f"{event.name} done", {"result": True}))
        elif kind is sse.AgentEventKind.UNKNOWN:
            log.debug("edit.unknown_frame", data=event.text)
        return out


class _Landed(Exception):
    """Internal: the request failed, but the draft changed: the edit landed anyway."""

    def __init__(self, state: SessionState) -> None:
        super().__init__("landed")
        self.state = state


class _MaybeSent(Exception):
    """Internal: the request may have been delivered: confirm, never re-send."""

    def __init__(self, error: TransientError) -> None:
        super().__init__(str(error))
        self.error = error


class Editor:
    """Sends instructions to a session and reports what happened."""

    def __init__(
        self,
        client: NemoClient,
        *,
        clock: Callable[[], float],
        edit_timeout: float,
        max_event_bytes: int = sse.DEFAULT_MAX_EVENT_BYTES,
        landing_window: float = LANDING_WINDOW,
    ) -> None:
        """`edit_timeout`: seconds one turn's stream may take, held by the event loop's
        clock whether or not bytes or frames arrive (and by `clock` at each frame);
        `max_event_bytes`: the cap on one line or event of the stream; `landing_window`:
        seconds the draft is watched for an edit whose turn ended without an answer."""
        self._client = client
        self._clock = clock
        self._edit_timeout = edit_timeout
        self._max_event_bytes = max_event_bytes
        self._landing_waits = landing_waits(landing_window)

    async def edit(self, session_id: str, instruction: str) -> AsyncIterator[EditEvent]:
        before = await read_state(self._client, session_id)
        try:
            stream = await self._client.call(
                CallKind.EDIT,
                lambda authorized: self._open(session_id, instruction, before, authorized),
            )
        except _Landed as landed:
            log.info("edit.landed_despite_error")
            yield _summary(landed.state)
            return
        except _MaybeSent as sent:
            async for event in self._confirm(session_id, before, str(sent.error)):
                yield event
            return

        log.info("edit.sent", session_id=session_id)
        turn = Turn(started=self._clock(), limit=self._edit_timeout)
        # The deadline is the event loop's: it holds while no byte comes, and while bytes
        # come that make no frame. It bounds each wait for the next frame, never the
        # `yield`, so it cannot cancel what the caller does with an event.
        deadline = asyncio.get_running_loop().time() + self._edit_timeout
        frames = stream.frames(max_event_bytes=self._max_event_bytes)
        broken: str | None = None
        try:
            while True:
                try:
                    async with asyncio.timeout_at(deadline):
                        frame = await anext(frames, None)
                except TimeoutError:
                    broken = self._overdue()
                    break
                if frame is None:
                    break
                now = self._clock()
                for agent_event in sse.interpret(frame):
                    for event in turn.on_event(agent_event, now):
                        yield event
                if turn.overdue(now):
                    broken = self._overdue()
                    break
        except sse.StreamSilent:  # httpx's read timeout is the turn's limit: the same deadline
            broken = self._overdue()
        except TransientError as error:  # StreamDropped, EventTooLarge: delivered, then broken
            broken = str(error)
        finally:
            await frames.aclose()
            await stream.aclose()

        if broken is not None:
            log.warning("edit.stream_broken", reason=broken)
            async for event in self._confirm(session_id, before, broken):
                yield event
            return
        log.info("edit.turn_done", text=turn.said_text, tools=turn.tools)
        if not turn.said_text:
            after = await read_state(self._client, session_id)
            if after.fingerprint != before.fingerprint:
                yield _summary(after)
            else:
                yield EditEvent(
                    EditEventKind.WARNING,
                    f"NemoVideo said nothing and the draft did not change: {instruction!r}",
                )

    def _overdue(self) -> str:
        return f"the edit did not finish within {_duration(self._edit_timeout)} (nemo.edit_timeout)"

    async def _open(
        self, session_id: str, instruction: str, before: SessionState, authorized: Authorized
    ) -> sse.EventStream:
        """One try at starting the stream (retried by the EDIT policy when not delivered)."""
        call = self._client.describe("send the instruction", authorized)
        timeout = httpx.Timeout(self._client.settings.request_timeout, read=self._edit_timeout)
        try:
            return await sse.open_event_stream(
                self._client.api,
                RUN_SSE_PATH,
                body=run_body(session_id, instruction),
                headers=authorized.headers,
                timeout=timeout,
                call=call,
                now=self._client.now(),
            )
        except errors.MaybeDelivered as error:
            raise _MaybeSent(error) from error
        except TransientError:
            # refused before it was processed; it is safe to send again if nothing changed
            after = await read_state(self._client, session_id)
            if after.fingerprint != before.fingerprint:
                raise _Landed(after) from None
            raise

    async def landed(self, session_id: str, before: str) -> bool:
        """Whether the draft moved on from the fingerprint `before` (an instruction sent
        by a run that stopped mid-turn landed), looking over the landing window as a turn
        may still be running on the service."""
        return await self._moved_on(session_id, before) is not None

    async def _moved_on(self, session_id: str, before: str) -> SessionState | None:
        """The state once it differs from `before`, read after each wait of the landing
        window; None when it never did."""
        window = sum(self._landing_waits)
        log.info("edit.looking", session_id=session_id, window_s=round(window))
        waited = 0.0
        for delay in self._landing_waits:
            await self._client.sleep(delay)
            if (waited + delay) // 60 > waited // 60:  # a line a minute: never silent
                log.info("edit.still_looking", waited_s=round(waited + delay), window_s=window)
            waited += delay
            after = await read_state(self._client, session_id)
            if after.fingerprint != before:
                return after
        return None

    async def _confirm(
        self, session_id: str, before: SessionState, reason: str
    ) -> AsyncIterator[EditEvent]:
        """After a delivery whose outcome is unknown: read the state, never re-send."""
        after = await self._moved_on(session_id, before.fingerprint)
        if after is not None:
            log.info("edit.confirmed", reason=reason)
            yield _summary(after)
            return
        waited = sum(self._landing_waits)
        log.warning("edit.not_landed", reason=reason, checks=len(self._landing_waits))
        raise EngineError(
            f"the edit was sent but did not land within {_duration(waited)}"
            f" (nemo.landing_window); not re-sent to avoid charging twice ({reason})",
            retryable=False,
            hint="NemoVideo may still finish it: look at the project there before sending"
            " the file again, which starts a new edit, charged again",
        )


def _duration(seconds: float) -> str:
    return f"{seconds / 60:.3g} min" if seconds >= 120 else f"{seconds:g} s"


def _summary(state: SessionState) -> EditEvent:
    return EditEvent(EditEventKind.TEXT, f"Done. {state.draft.summary()}")
