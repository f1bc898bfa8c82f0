"""The `/run_sse` event stream: a pure decoder, event interpretation, and a thin adapter.

1. `FrameDecoder` (pure): bytes in, in chunks split anywhere (even inside a UTF-8
   character or a CRLF), frames out, in linear time and memory bounded by one line or
   event's cap (`max_event_bytes`). A frame is one SSE event's `data`, or a comment line.
   Not httpx-sse's decoder (read, after its `_decoders.py`): it drops comment lines, one
   of NemoVideo's keep-alive forms that must count as "still working", and it drops a last
   event the server closed without its blank line, which may be the `{"error": ...}` frame.
2. `interpret` (pure): a frame as `AgentEvent`s: heartbeats (empty `data:`,
   `data: heartbeat`, `{"type":"heartbeat"}`, comments), text (only from non-partial,
   non-thought parts), tool calls and results, and errors (`errorCode`/`errorMessage`, or
   a last `{"error": ...}` frame, valid JSON or not). Events are read by
   `replies.AgentReply` (camelCase and snake_case keys); one of an undocumented shape is
   UNKNOWN (logged, ignored), not the end of the turn.
3. `open_event_stream` (effects): POST with httpx's own `stream`, check status and content
   type before reading (401/404/422 come as plain JSON), then feed the decoder.
   Whether a failure happened before the stream started (`open_event_stream` raised) or
   after (`EventStream.frames` raised `StreamDropped`) decides whether re-sending is safe.
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import AsyncGenerator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

import httpx

from nemowatch.engines.nemo import errors
from nemowatch.engines.nemo.errors import UnexpectedReply
from nemowatch.engines.nemo.replies import AgentReply, parse
from nemowatch.errors import EngineError

# ---------------------------------------------------------------- 1. frames from bytes


@dataclass(frozen=True)
class Frame:
    """One SSE event's data (lines joined by "\\n"), or a comment line (`comment` set)."""

    data: str = ""
    comment: str | None = None


DEFAULT_MAX_EVENT_BYTES = 1 << 20  # one line or event (nemo.max_event_bytes)
_LINE_END = re.compile(rb"\r\n|\r|\n")


class EventTooLarge(errors.MaybeDelivered):
    """One line or event of the stream is over the cap (`max_event_bytes`): the stream is
    abandoned, as a dropped one would be (the instruction was delivered)."""

    def __init__(self, cap: int) -> None:
        super().__init__(
            f"NemoVideo sent one event of the edit's stream over {size_text(cap)}, the cap"
            " set by nemo.max_event_bytes; the stream was abandoned"
        )
        self.cap = cap


def size_text(size: int) -> str:
    """`size` bytes as people write it: 1 MiB, 512 KiB, 1000 bytes."""
    for unit, scale in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if size >= scale:
            return f"{size / scale:.3g} {unit}"
    return f"{size} bytes"


class FrameDecoder:
    """Incremental SSE decoding: `feed` chunks as they come, `close` at the end. Pure.

    Lines are cut from the bytes before they are decoded (a line ending is ASCII, never
    part of a UTF-8 character), so a line is decoded once, whole. A line still open is
    kept as a list of chunks, joined once at its end: linear, however it is split. One
    line, or one event's data lines together, over `max_event_bytes` raises
    EventTooLarge at once, without waiting for its end (a line that never ends would
    otherwise grow without limit).
    """

    def __init__(self, max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES) -> None:
        self._cap = max_event_bytes
        self._line: list[bytes] = []  # the current line's chunks, not yet terminated
        self._line_size = 0
        self._pending_cr = False  # the last chunk ended with "\r": "\n" may follow
        self._data: list[str] = []  # the current event's data lines
        self._data_size = 0  # their bytes, with the "\n" that will join them

    def feed(self, chunk: bytes) -> list[Frame]:
        frames: list[Frame] = []
        if self._pending_cr:
            self._pending_cr = False
            if chunk.startswith(b"\n"):
                chunk = chunk[1:]
        start = 0
        for match in _LINE_END.finditer(chunk):
            if match.group() == b"\r" and match.end() == len(chunk):
                self._pending_cr = True  # a "\r\n" split between chunks
            self._extend(chunk[start : match.start()])
            start = match.end()
            frames.extend(self._field(self._take_line()))
        self._extend(chunk[start:])
        return frames

    def close(self) -> list[Frame]:
        """Frames still buffered when the stream ends (a last event without its blank line
        is kept: an error frame written just before the server closed must not be lost)."""
        frames: list[Frame] = []
        if self._line:
            frames.extend(self._field(self._take_line()))
        if self._data:
            frames.append(self._take_event())
        return frames

    def _extend(self, piece: bytes) -> None:
        if not piece:
            return
        self._line_size += len(piece)
        if self._line_size > self._cap:
            raise EventTooLarge(self._cap)
        self._line.append(piece)

    def _take_line(self) -> bytes:
        line = b"".join(self._line)
        self._line = []
        self._line_size = 0
        return line

    def _take_event(self) -> Frame:
        frame = Frame(data="\n".join(self._data))
        self._data = []
        self._data_size = 0
        return frame

    def _field(self, line: bytes) -> list[Frame]:
        if not line:
            return [self._take_event()] if self._data else []
        if line.startswith(b":"):
            return [Frame(comment=_text(line[1:]).strip())]
        name, _, value = line.partition(b":")
        if value.startswith(b" "):
            value = value[1:]
        if name == b"data":
            self._data_size += len(value) + (1 if self._data else 0)
            if self._data_size > self._cap:
                raise EventTooLarge(self._cap)
            self._data.append(_text(value))
        # event, id, retry and unknown fields: ADK sends none, and nothing here needs them
        return []


def _text(raw: bytes) -> str:
    return raw.decode("utf-8", errors="replace")


# ---------------------------------------------------------------- 2. events from frames


class AgentEventKind(StrEnum):
    HEARTBEAT = "heartbeat"  # a keep-alive, in any of its forms
    TEXT = "text"  # the agent's words (complete, not a thought)
    TOOL_CALL = "tool_call"  # functionCall
    TOOL_RESULT = "tool_result"  # functionResponse
    ERROR = "error"  # errorCode/errorMessage, or an {"error": ...} frame
    QUIET = "quiet"  # a valid event with nothing to show: actions-only, partial, thought
    UNKNOWN = "unknown"  # data that is none of the above (logged, ignored)


@dataclass(frozen=True)
class AgentEvent:
    kind: AgentEventKind
    text: str = ""
    name: str | None = None
    data: dict[str, Any] = field(default_factory=dict)


HEARTBEAT_WORDS = frozenset({"heartbeat", "ping", "keepalive", "keep-alive"})
_LEGACY_ERROR = re.compile(r'^\{\s*"error"\s*:\s*"?(?P<message>.*?)"?\s*\}?\s*$', re.DOTALL)


def interpret(frame: Frame) -> list[AgentEvent]:
    """What one frame means. Pure."""
    if frame.comment is not None:
        return [AgentEvent(AgentEventKind.HEARTBEAT)]
    text = frame.data.strip()
    if not text or text.lower() in HEARTBEAT_WORDS:
        return [AgentEvent(AgentEventKind.HEARTBEAT)]
    try:
        value = json.loads(text)
    except ValueError:
        legacy = _LEGACY_ERROR.match(text)
        if legacy:  # an old server's {"error": "..."} written without escaping
            message = legacy.group("message").strip() or "the agent failed"
            return [AgentEvent(AgentEventKind.ERROR, text=message)]
        if "\n" in text:  # events not separated by blank lines: read line by line
            return [event for line in text.splitlines() for event in interpret(Frame(line))]
        return [AgentEvent(AgentEventKind.UNKNOWN, text=text[:200])]
    if isinstance(value, str) and value.strip().lower() in HEARTBEAT_WORDS:
        return [AgentEvent(AgentEventKind.HEARTBEAT)]
    if not isinstance(value, dict):
        return [AgentEvent(AgentEventKind.UNKNOWN, text=text[:200])]
    return interpret_event(value)


def interpret_event(event: Mapping[str, Any]) -> list[AgentEvent]:
    """What one decoded ADK event means (camelCase or snake_case). Pure."""
    try:
        reply = parse(AgentReply, event, endpoint="/run_sse event")
    except UnexpectedReply as odd:  # one odd event does not end the turn: logged, ignored
        return [AgentEvent(AgentEventKind.UNKNOWN, text=str(odd))]
    if (reply.type or "").lower() in HEARTBEAT_WORDS:
        return [AgentEvent(AgentEventKind.HEARTBEAT)]
    if reply.error_code or reply.error_message:
        message = str(reply.error_message or reply.error_code)
        return [AgentEvent(AgentEventKind.ERROR, text=message, data={"code": reply.error_code})]
    if reply.error:
        frame = reply.error
        message = frame.get("message", json.dumps(frame)) if isinstance(frame, dict) else frame
        return [AgentEvent(AgentEventKind.ERROR, text=str(message))]
    content = reply.content
    if content is None or reply.partial is True or content.role == "user":
        return [AgentEvent(AgentEventKind.QUIET)]  # actions-only, a preview of text, an echo
    events: list[AgentEvent] = []
    for part in content.parts:
        if part.function_call is not None:
            call = part.function_call
            data = {"id": call.id, "args": call.args}
            events.append(AgentEvent(AgentEventKind.TOOL_CALL, name=call.name or "?", data=data))
        elif part.function_response is not None:
            result = part.function_response
            name = result.name or "?"
            events.append(AgentEvent(AgentEventKind.TOOL_RESULT, name=name, data={"id": result.id}))
        elif part.thought is True:
            continue
        elif part.text is not None and part.text.strip():
            events.append(
                AgentEvent(AgentEventKind.TEXT, text=part.text, data={"author": reply.author})
            )
    return events or [AgentEvent(AgentEventKind.QUIET)]


# ---------------------------------------------------------------- 3. the adapter


class StreamDropped(errors.MaybeDelivered):
    """The event stream broke after it started: the instruction was delivered."""


class StreamSilent(StreamDropped):
    """No byte came for the whole read timeout (the turn's limit): the turn is overdue."""


class EventStream:
    """An open ADK event stream whose status and content type have been checked."""

    def __init__(self, response: httpx.Response, stack: contextlib.AsyncExitStack) -> None:
        self.response = response
        self._stack = stack

    async def frames(
        self, *, max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES
    ) -> AsyncGenerator[Frame, None]:
        """Frames until the server closes the stream; a broken stream raises StreamDropped
        (StreamSilent after a read timeout), a line or event over `max_event_bytes`
        EventTooLarge (all MaybeDelivered)."""
        decoder = FrameDecoder(max_event_bytes)
        try:
            async for chunk in self.response.aiter_bytes():
                for frame in decoder.feed(chunk):
                    yield frame
        except httpx.ReadTimeout as error:
            raise StreamSilent("no byte of the edit's event stream within its limit") from error
        except httpx.HTTPError as error:
            raise StreamDropped(f"the edit's event stream broke: {type(error).__name__}") from error
        for frame in decoder.close():
            yield frame

    async def aclose(self) -> None:
        await self._stack.aclose()


def is_event_stream(response: httpx.Response) -> bool:
    return "text/event-stream" in response.headers.get("content-type", "").lower()


async def open_event_stream(
    http: httpx.AsyncClient,
    path: str,
    *,
    body: Mapping[str, Any],
    headers: Mapping[str, str],
    timeout: httpx.Timeout,
    call: errors.Call,
    now: datetime | None = None,
) -> EventStream:
    """POST `body` and return the stream once its status and content type are checked.

    Raises the translated error when the answer is not a stream (nothing was started).
    """
    stack = contextlib.AsyncExitStack()
    try:
        response = await stack.enter_async_context(
            http.stream(
                "POST",
                path,
                json=dict(body),
                headers={**headers, "Accept": "text/event-stream", "Cache-Control": "no-store"},
                timeout=timeout,
            )
        )
        if response.status_code >= 300 or not is_event_stream(response):
            await response.aread()
            errors.check(response, call, now=now)  # raises for every error form
            content_type = response.headers.get("content-type", "none")
            raise EngineError(
                f"NemoVideo answered the edit with {content_type}, not an event stream",
                retryable=True,
            )
    except httpx.HTTPError as error:
        await stack.aclose()
        raise errors.from_transport(error, call) from error
    except BaseException:
        await stack.aclose()
        raise
    return EventStream(response, stack)
