"""A real NemoEngine pointed at the fake NemoVideo server on 127.0.0.1, with time under
the test's control: sleeps are recorded, not slept; the monotonic clock and the wall
clock (which the fake shares, for token expiry) move only when a test moves them.

Also the raw SSE frames a test scripts a turn with (`FakeNemo.script_turn`).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from nemowatch.config import NemoSettings
from nemowatch.engines.base import Session
from nemowatch.engines.nemo import NemoEngine
from tests.fakes.nemo_server import FakeNemo, Variants

# what the fake serves as the rendered video: enough like an MP4 for the client's checks
VIDEO = b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 64
NOW = datetime(2030, 1, 1, tzinfo=UTC)  # the wall clock's start; tokens last a week
START_DRAFT = {"t": [{"tt": 0, "sg": [{"at": 0, "d": 12500}]}], "d": 12500, "m": {}}
MINT = "mint"  # make_engine's default token: a registered user's, minted by the fake


class Sleeps:
    """A sleep that records the delays instead of waiting."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)


class Clock:
    """A monotonic clock that moves only when told to (`advance`), or by the next of
    `steps` each time it is read after the first: the editor reads it when a turn starts
    and once per frame, so the steps set the time of each frame, however fast the fake
    writes them."""

    def __init__(self, start: float = 1000.0, *, steps: Iterable[float] = ()) -> None:
        self.now = start
        self._steps = iter(steps)
        self._read = False

    def __call__(self) -> float:
        if self._read:
            self.now += next(self._steps, 0.0)
        self._read = True
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class Wall:
    """The wall clock shared by the engine (`now`) and the fake (`clock`)."""

    def __init__(self, start: datetime = NOW) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def timestamp(self) -> float:
        return self.now.timestamp()

    def advance(self, delta: timedelta) -> None:
        self.now += delta


@contextmanager
def serving(tmp_path: Path, wall: Wall | None = None, **variants: Any) -> Iterator[FakeNemo]:
    """A started fake whose renders complete at the second poll, with `variants` set; it
    must end with no bug of its own in its books."""
    video = tmp_path / "served-video.mp4"
    video.write_bytes(VIDEO)
    clock = (wall or Wall()).timestamp
    fake = FakeNemo(video=video, variants=Variants(render_polls=2, **variants), clock=clock)
    with fake:
        yield fake
    assert fake.books.server_errors == []


def settings(base_url: str, **overrides: Any) -> NemoSettings:
    return NemoSettings(**{"base_url": base_url, "skill_platform": "auto", **overrides})


def make_engine(
    fake: FakeNemo,
    state_dir: Path,
    *,
    token: str | None = MINT,
    sleep: Sleeps | None = None,
    clock: Clock | None = None,
    wall: Wall | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
    **overrides: Any,
) -> NemoEngine:
    """An engine with $NEMO_TOKEN set to `token` (by default one the fake minted; None:
    no token, so the engine asks for an anonymous one)."""
    if token == MINT:
        token = fake.mint_token()
    return NemoEngine(
        settings(fake.base_url, **overrides),
        state_dir=state_dir,
        environ={"NEMO_TOKEN": token} if token else {},
        sleep=sleep or Sleeps(),
        clock=clock or Clock(),
        now=wall or Wall(),
        transport=transport,
        system="linux",
        patience=0.0,  # the attempts alone: an outage's patience is tested with the pipeline
    )


def session_in(fake: FakeNemo, token: str, draft: dict[str, Any] | None = None) -> Session:
    """A session of the token's user, as the ledger would give it back to the engine:
    a new one (the fake's own empty draft) or one holding `draft`."""
    session_id = fake.open_session(token, draft)
    return Session(id=session_id, data={"session_id": session_id, "job_id": "job1"})


class ConnectFailures(httpx.AsyncBaseTransport):
    """The real transport, but the first `times` requests to `path` (any path: None) fail
    to connect: a refused connection cannot be asked of a listening server, one request
    at a time."""

    def __init__(self, times: int = 1, *, path: str | None = None) -> None:
        self.left = times
        self.path = path
        self._inner = httpx.AsyncHTTPTransport()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if self.left > 0 and self.path in (None, request.url.path):
            self.left -= 1
            raise httpx.ConnectError("connection refused", request=request)
        return await self._inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self._inner.aclose()


# ---------------------------------------------------------------- SSE frames


def sse(event: dict[str, Any] | str) -> bytes:
    """One SSE frame as ADK writes it."""
    data = event if isinstance(event, str) else json.dumps(event, separators=(",", ":"))
    return f"data: {data}\n\n".encode()


def text_event(text: str, *, partial: bool = False, thought: bool = False) -> dict[str, Any]:
    part: dict[str, Any] = {"text": text}
    if thought:
        part["thought"] = True
    event: dict[str, Any] = {"author": "nemo_agent", "content": {"role": "model", "parts": [part]}}
    if partial:
        event["partial"] = True
    return event


def call_event(name: str = "edit_timeline") -> dict[str, Any]:
    return {
        "author": "nemo_agent",
        "content": {"parts": [{"functionCall": {"id": "c1", "name": name, "args": {"x": 1}}}]},
    }


def result_event(name: str = "edit_timeline") -> dict[str, Any]:
    return {
        "author": "nemo_agent",
        "content": {"parts": [{"functionResponse": {"id": "c1", "name": name, "response": {}}}]},
    }


DEFAULT_TURN = (sse(call_event()), sse(result_event()), sse(text_event("Done.")))
