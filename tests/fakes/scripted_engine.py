"""A scripted engine: the Engine protocol in memory, each step doing what the test cues
(succeed, raise, or stall until cancelled), so the pipeline's state machine is tested in
milliseconds. Its "render" is a real file the test gives (the outbox probes what it
publishes), copied by `download`.

Like a real engine it owns its transport retries: each step is one "call on the wire",
retried under `policy` by nemowatch.retry (the layer the NemoVideo client uses), so a test
sees how many times a failing step was tried in all, and what the pipeline did after.
"""

from __future__ import annotations

import asyncio
import shutil
from collections import defaultdict, deque
from collections.abc import AsyncIterator
from pathlib import Path

from nemowatch.engines.base import (
    EDIT_FRAME,
    Credits,
    Draft,
    EditEvent,
    EditEventKind,
    Frame,
    Job,
    JSONObject,
    Media,
    Render,
    RenderState,
    RenderStatus,
    Session,
)
from nemowatch.retry import RetryPolicy, Sleep
from nemowatch.retry import call as retried
from nemowatch.rules import ExportSpec


class Stall:
    """A cue: the step waits until it is cancelled (a daemon stopping mid-step)."""


STALL = Stall()
THREE_TRIES = RetryPolicy(attempts=3)
Cue = BaseException | Stall | RenderStatus | None  # None: the step succeeds


class ScriptedEngine:
    """Steps: open_session, upload, edit_checkpoint, edit, draft, export, poll, download.
    `cue(step, *cues)` queues what the step's next calls do; without a cue a step succeeds
    (a poll: the render is complete). `calls` lists every step called, in order."""

    name = "scripted"
    shares_sessions = False
    render_deadline = None

    def __init__(
        self,
        result: Path | None,
        duration: float,
        *,
        sleep: Sleep,
        policy: RetryPolicy = THREE_TRIES,
    ) -> None:
        self.result = result
        self.duration = duration
        self.sleep = sleep
        self.policy = policy
        self.calls: list[str] = []
        self.renders = 0
        self.checkpoint: str | None = None  # what edit_checkpoint answers
        self.landed = False  # what edit_landed answers
        self.draft_warnings: list[str] = []  # what the draft says it falls short of
        self._cues: defaultdict[str, deque[Cue]] = defaultdict(deque)

    def cue(self, step: str, *cues: Cue) -> ScriptedEngine:
        self._cues[step].extend(cues)
        return self

    def count(self, step: str) -> int:
        return self.calls.count(step)

    async def _step(self, step: str) -> RenderStatus | None:
        return await retried(lambda: self._once(step), self.policy, what=step, sleep=self.sleep)

    async def _once(self, step: str) -> RenderStatus | None:
        self.calls.append(step)
        cue = self._cues[step].popleft() if self._cues[step] else None
        if isinstance(cue, Stall):
            await asyncio.Event().wait()
        if isinstance(cue, BaseException):
            raise cue
        return cue

    async def open_session(self, job: Job) -> Session:
        await self._step("open_session")
        return Session(id=f"session-{job.id}")

    async def upload(self, session: Session, source: Path) -> Media:
        await self._step("upload")
        return Media(name=source.name, duration=self.duration, has_audio=True)

    async def edit_checkpoint(self, session: Session) -> str | None:
        await self._step("edit_checkpoint")
        return self.checkpoint

    async def edit_landed(self, session: Session, checkpoint: str) -> bool:
        await self._step("edit_landed")
        return self.landed

    async def edit(self, session: Session, instruction: str) -> AsyncIterator[EditEvent]:
        await self._step("edit")
        yield EditEvent(EditEventKind.TEXT, f"did: {instruction}")

    async def draft(self, session: Session) -> Draft:
        await self._step("draft")
        video = {"tt": 0, "sg": [{"at": 0, "d": round(self.duration * 1000)}]}
        metadata: JSONObject = (
            {"warnings": list(self.draft_warnings)} if self.draft_warnings else {}
        )
        return Draft(tracks=(video,), duration_ms=round(self.duration * 1000), metadata=metadata)

    async def export(
        self, session: Session, draft: Draft, spec: ExportSpec, frame: Frame = EDIT_FRAME
    ) -> Render:
        await self._step("export")
        self.renders += 1
        return Render(id=f"render-{self.renders}")

    async def poll(self, render: Render) -> RenderStatus:
        status = await self._step("poll")
        return status or RenderStatus(RenderState.COMPLETED, progress=100.0)

    async def download(self, render: Render, dest: Path) -> None:
        await self._step("download")
        if self.result is not None:  # None: a download that "succeeds" and writes nothing
            await asyncio.to_thread(shutil.copyfile, self.result, dest)

    async def credits(self) -> Credits | None:
        return None

    async def close(self) -> None:
        return None
