"""Event streams that never end well: what the fake's /run_sse can send besides frames.

A test puts one of these among a scripted turn's frames (`fake.script_turn(PING,
Silence())`); the server's handler thread plays it through a `Wire`. None holds more than
one block in memory, whatever it sends, so a test can measure the client's memory while
the fake runs in the same process. Each ends when the client goes away (the next write
fails) or the fake stops (`wait` cuts it short), and at the latest after `seconds`.

- Silence: the stream's headers, then not a byte.
- Heartbeats: a keep-alive every `gap` seconds: frames, never an event.
- EndlessLine: `size` bytes of one `data:` line that never ends, as fast as they are read.
- Trickle: one byte every `gap` seconds of a line that never ends: bytes, never a frame.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

BLOCK = 64 * 1024  # bytes an EndlessLine writes at a time (the one block it holds)


@dataclass(frozen=True)
class Wire:
    """How an act reaches the client, given by the handler that plays it."""

    write: Callable[[bytes], None]  # one chunk of the response (raises once the client left)
    wait: Callable[[float], None]  # sleep; ends the response when the fake stops
    heartbeat: Callable[[], bytes]  # the next keep-alive, in the form the variants pick


class Act:
    """A part of a scripted turn that is not a frame."""

    def play(self, wire: Wire) -> None:
        raise NotImplementedError


@dataclass(frozen=True)
class Silence(Act):
    seconds: float = 60.0

    def play(self, wire: Wire) -> None:
        wire.wait(self.seconds)


@dataclass(frozen=True)
class Heartbeats(Act):
    gap: float = 0.02
    seconds: float = 60.0

    def play(self, wire: Wire) -> None:
        for _ in range(int(self.seconds / self.gap)):
            wire.wait(self.gap)
            wire.write(wire.heartbeat())


@dataclass(frozen=True)
class EndlessLine(Act):
    size: int = 50 * 1024 * 1024

    def play(self, wire: Wire) -> None:
        block = b"x" * BLOCK
        wire.write(b"data: ")
        sent = 0
        while sent < self.size:
            piece = block if self.size - sent >= BLOCK else block[: self.size - sent]
            wire.write(piece)
            sent += len(piece)


@dataclass(frozen=True)
class Trickle(Act):
    gap: float = 0.02
    seconds: float = 60.0

    def play(self, wire: Wire) -> None:
        wire.write(b'data: {"content":')
        for _ in range(int(self.seconds / self.gap)):
            wire.wait(self.gap)
            wire.write(b" ")
