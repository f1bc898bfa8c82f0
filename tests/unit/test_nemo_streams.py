"""Bounded streams: a turn's event stream cannot grow memory, block the event loop or run
past the turn's deadline, whatever the server sends (or does not send)."""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from nemowatch.engines.base import EditEventKind, Session
from nemowatch.engines.nemo import NemoEngine
from nemowatch.engines.nemo.sse import EventTooLarge, Frame, FrameDecoder, size_text
from nemowatch.errors import EngineError
from tests.fakes.nemo_kit import (
    DEFAULT_TURN,
    Sleeps,
    call_event,
    make_engine,
    serving,
    session_in,
    sse,
)
from tests.fakes.nemo_server import Endpoint, FakeNemo
from tests.fakes.nemo_streams import Act, EndlessLine, Heartbeats, Silence, Trickle

INSTRUCTION = "cut out silences and add lofi music"
MIB = 1 << 20
DEADLINE = 0.4  # seconds: the turn's deadline (nemo.edit_timeout) in the deadline tests


@pytest.fixture
def fake(tmp_path: Path) -> Iterator[FakeNemo]:
    with serving(tmp_path) as server:
        yield server


@pytest.fixture
def token(fake: FakeNemo) -> str:
    return fake.mint_token()


def sent(fake: FakeNemo) -> int:
    return len(fake.books.requests_to(Endpoint.RUN_SSE))


def instructions(fake: FakeNemo, session_id: str) -> list[str]:
    return [record.text for record in fake.books.instructions.get(session_id, [])]


async def edit(engine: NemoEngine, session: Session, instruction: str = INSTRUCTION) -> None:
    _ = [event async for event in engine.edit(session, instruction)]


# ---------------------------------------------------------------- the decoder (pure)


def feed_all(decoder: FrameDecoder, chunks: list[bytes]) -> list[Frame]:
    frames: list[Frame] = []
    for chunk in chunks:
        frames.extend(decoder.feed(chunk))
    return frames + decoder.close()


def test_a_line_over_the_cap_fails_before_it_ends() -> None:
    decoder = FrameDecoder(max_event_bytes=1024)
    decoder.feed(b"data: " + b"x" * 1000)
    with pytest.raises(EventTooLarge):
        decoder.feed(b"x" * 100)  # no line end yet: the cap does not wait for one


def test_a_line_at_the_cap_is_decoded() -> None:
    line = b"data: " + b"x" * (1024 - 6)
    assert feed_all(FrameDecoder(max_event_bytes=1024), [line, b"\n\n"]) == [Frame(data="x" * 1018)]


def test_an_event_whose_lines_together_pass_the_cap_fails() -> None:
    decoder = FrameDecoder(max_event_bytes=1024)
    lines = [b"data: " + b"y" * 500 + b"\n"] * 3  # each line fits, the event does not
    with pytest.raises(EventTooLarge):
        feed_all(decoder, lines)


def test_a_stream_of_small_events_is_never_over_the_cap() -> None:
    frames = feed_all(FrameDecoder(max_event_bytes=1024), [b"data: " + b"z" * 900 + b"\n\n"] * 50)
    assert len(frames) == 50


def test_a_long_line_split_into_many_chunks_decodes_whole() -> None:
    text = "剪辑完成 " * 20_000  # 260 KB, with characters cut between chunks
    stream = f"data: {text}\n\n".encode()
    chunks = [stream[start : start + 997] for start in range(0, len(stream), 997)]
    assert feed_all(FrameDecoder(), chunks) == [Frame(data=text)]


def test_the_error_names_the_cap_and_its_setting() -> None:
    message = str(EventTooLarge(MIB))
    assert "1 MiB" in message
    assert "nemo.max_event_bytes" in message


@pytest.mark.parametrize(
    ("size", "text"),
    [(MIB, "1 MiB"), (64 * 1024, "64 KiB"), (1536, "1.5 KiB"), (1000, "1000 bytes")],
)
def test_sizes_are_written_as_people_write_them(size: int, text: str) -> None:
    assert size_text(size) == text


# ---------------------------------------------------------------- what the process feels


def status_kib(name: str) -> int:
    """A VmRSS-like line of /proc/self/status, in KiB."""
    found = re.search(rf"^{name}:\s+(\d+) kB", Path("/proc/self/status").read_text(), re.M)
    assert found is not None, f"no {name} in /proc/self/status"
    return int(found.group(1))


def reset_peak() -> bool:
    """Reset VmHWM to the current RSS (Linux >= 4.0); False where that is not allowed."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


@dataclass
class LoopWatch:
    """Another task on the event loop: how late its 10 ms sleeps wake (what every other
    job's task feels), and the process's resident memory, sampled at each wake.

    On a shared machine a wake is also late when the OS runs something else: `blocked`
    counts only the lateness the loop's own thread spent working (its CPU time over the
    sleep, at most the lateness), which is what a blocking decoder causes, and which
    other processes cannot add to.
    """

    period: float = 0.01
    lateness: list[float] = field(default_factory=list)  # wall time past each wake
    blocked: list[float] = field(default_factory=list)  # of it, the loop thread's own work
    peak_rss_kib: int = 0

    async def run(self) -> None:
        while True:
            wall, cpu = time.perf_counter(), time.thread_time()
            await asyncio.sleep(self.period)
            late = time.perf_counter() - wall - self.period
            self.lateness.append(late)
            self.blocked.append(min(late, time.thread_time() - cpu))
            self.peak_rss_kib = max(self.peak_rss_kib, status_kib("VmRSS"))


async def measured_turn(
    engine: NemoEngine, session: Session
) -> tuple[BaseException | None, LoopWatch, float]:
    """Run one turn beside a LoopWatch; what it raised, the watch, and the growth of the
    process's peak resident memory in MiB over what it held before the turn."""
    watch = LoopWatch()
    baseline = status_kib("VmRSS")
    peak_was_reset = reset_peak()
    watcher = asyncio.create_task(watch.run())
    await asyncio.sleep(0.05)  # the watch is running before the turn starts
    raised: BaseException | None = None
    try:
        await edit(engine, session)
    except EngineError as error:
        raised = error
    await asyncio.sleep(0.05)
    watcher.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await watcher
    peak = max(watch.peak_rss_kib, status_kib("VmHWM") if peak_was_reset else 0)
    return raised, watch, (peak - baseline) / 1024


async def test_an_endless_line_fails_the_turn_at_the_cap_without_memory_or_loop_cost(
    fake: FakeNemo, tmp_path: Path, token: str, record_property: Callable[[str, object], None]
) -> None:
    # one look for the edit after the stream is abandoned: with the waits not slept, the
    # default window's 13 state reads would come back to back inside the watch (one CI run
    # under load counted 94 ms of them in one wake), which is not what the stream costs
    engine = make_engine(fake, tmp_path, token=token, landing_window=1.0)
    session = session_in(fake, token)
    try:
        fake.script_turn(*DEFAULT_TURN)  # a first turn: what any turn allocates once
        await edit(engine, session, "add a title")
        fake.script_turn(sse(call_event()), EndlessLine(50 * MIB), apply=False)
        raised, watch, growth_mib = await measured_turn(engine, session)
    finally:
        await engine.close()
    worst = max(watch.blocked)
    record_property("rss_growth_mib", round(growth_mib, 2))
    record_property("max_loop_lateness_ms", round(max(watch.lateness) * 1000, 2))
    record_property("max_loop_blocked_ms", round(worst * 1000, 2))
    assert isinstance(raised, EngineError)
    assert "over 1 MiB, the cap set by nemo.max_event_bytes" in str(raised)
    assert "not re-sent" in str(raised)
    assert raised.retryable is False
    assert instructions(fake, session.id) == ["add a title", INSTRUCTION]  # each sent once
    assert growth_mib < 20, f"peak RSS grew {growth_mib:.1f} MiB"
    assert len(watch.lateness) >= 5
    assert worst < 0.05, f"the loop was blocked {worst * 1000:.0f} ms by its own work"


async def test_the_cap_is_the_setting(fake: FakeNemo, tmp_path: Path, token: str) -> None:
    engine = make_engine(fake, tmp_path, token=token, max_event_bytes=64 * 1024)
    fake.script_turn(sse(call_event()), EndlessLine(1 * MIB), apply=False)
    try:
        with pytest.raises(EngineError, match=r"over 64 KiB, the cap set by nemo\.max_event_bytes"):
            await edit(engine, session_in(fake, token))
    finally:
        await engine.close()


# ---------------------------------------------------------------- the turn's deadline


@pytest.mark.parametrize(
    "act",
    [Silence(), Heartbeats(gap=0.02), Trickle(gap=0.02)],
    ids=["never-a-byte", "heartbeats-forever", "bytes-never-a-frame"],
)
async def test_a_stream_that_never_ends_fails_at_the_turn_deadline(
    fake: FakeNemo, tmp_path: Path, token: str, act: Act
) -> None:
    sleeps = Sleeps()
    engine = make_engine(fake, tmp_path, token=token, sleep=sleeps, edit_timeout=DEADLINE)
    fake.script_turn(act, apply=False)
    session = session_in(fake, token)
    started = time.perf_counter()
    try:
        with pytest.raises(EngineError) as raised:
            await edit(engine, session)
    finally:
        await engine.close()
    elapsed = time.perf_counter() - started
    assert f"did not finish within {DEADLINE:g} s (nemo.edit_timeout)" in str(raised.value)
    assert "not re-sent" in str(raised.value)
    assert DEADLINE <= elapsed < DEADLINE + 3.0
    assert instructions(fake, session.id) == [INSTRUCTION]
    assert sent(fake) == 1
    assert sum(sleeps.delays) == 300.0  # the landing window, as after any drop


async def test_a_turn_past_its_deadline_that_landed_is_done_not_resent(
    fake: FakeNemo, tmp_path: Path, token: str
) -> None:
    engine = make_engine(fake, tmp_path, token=token, edit_timeout=DEADLINE)
    fake.script_turn(sse(call_event()), Heartbeats(gap=0.02), apply=True)
    session = session_in(fake, token)
    try:
        events = [event async for event in engine.edit(session, INSTRUCTION)]
    finally:
        await engine.close()
    assert events[-1].kind is EditEventKind.TEXT
    assert events[-1].text.startswith("Done. Timeline")
    assert sent(fake) == 1


async def test_the_deadline_never_cancels_what_the_caller_does_with_an_event(
    fake: FakeNemo, tmp_path: Path, token: str
) -> None:
    engine = make_engine(fake, tmp_path, token=token, edit_timeout=DEADLINE)
    fake.script_turn(sse(call_event()), Silence(), apply=False)
    session = session_in(fake, token)
    finished_work = False
    try:
        with pytest.raises(EngineError, match="did not finish within"):
            async for _ in engine.edit(session, INSTRUCTION):
                await asyncio.sleep(DEADLINE * 1.5)  # the caller's own work, past the deadline
                finished_work = True
    finally:
        await engine.close()
    assert finished_work
