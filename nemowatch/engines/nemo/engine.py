"""NemoEngine: the Engine protocol over the NemoVideo cloud API.

open_session -> upload (streamed) -> edit (`/run_sse`, never re-sent blindly) -> draft
(session state) -> export (deterministic render ids) -> poll -> download (no token).

Everything a later step needs is in `Session.data` and `Render.data` (plain JSON kept in
the ledger, typed by `kept`), so a restarted daemon rebuilds both and carries on.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import sys
import time
from collections.abc import AsyncIterator, Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import structlog

from nemowatch.config import NemoSettings
from nemowatch.engines.base import (
    EDIT_FRAME,
    Credits,
    Draft,
    EditEvent,
    Frame,
    Job,
    Media,
    Render,
    RenderStatus,
    Session,
)
from nemowatch.engines.nemo.client import CallKind, NemoClient
from nemowatch.engines.nemo.edit import Editor
from nemowatch.engines.nemo.kept import NemoSessionState
from nemowatch.engines.nemo.render import Renders
from nemowatch.engines.nemo.replies import CreditsReply, parse
from nemowatch.engines.nemo.session import create_session
from nemowatch.engines.nemo.state import SessionState, read_state
from nemowatch.engines.nemo.upload import check_content, check_source, local_size, upload_file
from nemowatch.errors import EngineError, TransientError
from nemowatch.retry import PATIENCE, Sleep
from nemowatch.rules import ExportSpec

log = structlog.get_logger("nemowatch.nemo")

CREDITS_PATH = "/api/credits/balance/simple"


class NemoEngine:
    """Edits in the NemoVideo cloud."""

    name = "nemo"
    shares_sessions = True  # see Engine

    def __init__(
        self,
        settings: NemoSettings,
        *,
        state_dir: Path,
        environ: Mapping[str, str] | None = None,
        sleep: Sleep = asyncio.sleep,
        clock: Callable[[], float] = time.monotonic,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        transport: httpx.AsyncBaseTransport | None = None,
        system: str = sys.platform,
        patience: float = PATIENCE,
    ) -> None:
        """`environ` defaults to os.environ ($NEMO_TOKEN); `sleep`, `clock` (monotonic
        seconds) and `now` (wall time, for token expiry) are injectable for tests, as is
        `transport` (an httpx.AsyncBaseTransport); `patience`: the longest outage a job's
        calls wait out (retry.PATIENCE)."""
        self.settings = settings
        self.render_deadline: float | None = settings.render_deadline  # `nemo.render_deadline`
        self._client = NemoClient(
            settings,
            state_dir=state_dir,
            environ=os.environ if environ is None else environ,
            sleep=sleep,
            now=now,
            transport=transport,
            system=system,
            patience=patience,
        )
        self._editor = Editor(
            self._client,
            clock=clock,
            edit_timeout=settings.edit_timeout,
            max_event_bytes=settings.max_event_bytes,
            landing_window=settings.landing_window,
        )
        self._renders = Renders(self._client)
        self._raw_drafts: dict[str, dict[str, Any]] = {}  # session id -> draft as read

    async def open_session(self, job: Job) -> Session:
        # What NemoVideo would refuse (its types, its 500 MB) fails here, before a session
        # is opened for it: no session, no upload, no credits spent on it.
        check_source(job.source, size=local_size(job.source))
        await asyncio.to_thread(check_content, job.source)
        opened = await create_session(self._client, language=self.settings.language)
        if opened.user_id:  # the token's answer may have lacked it (nemo-api.md, 2001)
            self._client.auth.learn_user_id(opened.user_id)
        user_id = opened.user_id or (await self._client.account()).user_id
        log.info("nemo.session.opened", session_id=opened.session_id, task_id=opened.task_id)
        state = NemoSessionState(
            session_id=opened.session_id, task_id=opened.task_id, user_id=user_id, job_id=job.id
        )
        return Session(id=opened.session_id, data=state.dump())

    async def join_session(self, session: Session, job: Job) -> Session:
        check_source(job.source, size=local_size(job.source))
        await asyncio.to_thread(check_content, job.source)
        state = NemoSessionState.load(session.data)
        joined = state.model_copy(update={"job_id": job.id})  # its renders: render_<job>_<n>
        return Session(id=session.id, data=joined.dump())

    async def upload(self, session: Session, source: Path) -> Media:
        return await upload_file(self._client, session.id, source)

    def edit(self, session: Session, instruction: str) -> AsyncIterator[EditEvent]:
        return self._editor.edit(session.id, instruction)

    async def edit_checkpoint(self, session: Session) -> str | None:
        return (await self._state(session)).fingerprint

    async def edit_landed(self, session: Session, checkpoint: str) -> bool:
        return await self._editor.landed(session.id, checkpoint)

    async def draft(self, session: Session) -> Draft:
        state = await self._state(session)
        if not state.ready:
            raise EngineError(
                "nothing to export yet: NemoVideo's draft has no clips",
                retryable=False,
                hint="check that the rule's instructions ask for an edit of the uploaded video",
            )
        self._raw_drafts[session.id] = state.raw_draft
        return state.draft

    async def export(
        self, session: Session, draft: Draft, spec: ExportSpec, frame: Frame = EDIT_FRAME
    ) -> Render:
        if frame.aspect is not None or frame.fit is not None:
            # `check` refuses such outputs for this engine (config/targets.py)
            raise EngineError(
                f"output {frame.output!r} asks for its own aspect or fit, which a NemoVideo"
                " render request cannot say (only format and quality)",
                hint="remove aspect and fit from that output, or use engine: local",
            )
        job_id = NemoSessionState.load(session.data).job_id or session.id
        raw = await self._draft_to_render(session, draft)
        render = await self._renders.export(
            # each output its own render ids (`render_<job>-<output>_<n>`): a restart adopts
            # the render of the output it was making, never an earlier output's
            job_id=f"{job_id}-{frame.output}" if frame.output else job_id,
            session_id=session.id,
            draft=raw,
            format=spec.format,
            quality=spec.quality.value,
        )
        return dataclasses.replace(render, format=spec.format)

    async def poll(self, render: Render) -> RenderStatus:
        return await self._renders.poll(render)

    async def download(self, render: Render, dest: Path) -> None:
        await self._renders.download(render, dest)

    async def credits(self) -> Credits:
        data = await self._client.request_json(
            CallKind.CREDITS, "GET", CREDITS_PATH, what="read the credit balance"
        )
        reply = parse(CreditsReply, data, endpoint="credits")
        account = await self._client.account()
        return Credits(
            available=reply.available or 0.0,
            frozen=reply.frozen or 0.0,
            total=reply.total,
            user_id=account.user_id,
            anonymous=account.anonymous,
        )

    async def close(self) -> None:
        await self._client.aclose()

    async def _state(self, session: Session) -> SessionState:
        return await read_state(self._client, session.id)

    async def _draft_to_render(self, session: Session, draft: Draft) -> dict[str, Any]:
        """The draft exactly as NemoVideo wrote it (keys `Draft` does not model included)
        when it is the one the pipeline approved; else the pipeline's own copy."""
        # taken, not read: kept, it would stay in memory for every job the daemon ever ran
        # (a re-submit reads the state again, as after a restart)
        raw = self._raw_drafts.pop(session.id, None)
        if raw is None:
            try:
                state = await self._state(session)
            except (EngineError, TransientError):
                state = None
            raw = state.raw_draft if state is not None else None
        if raw is not None and SessionState(raw_draft=raw).draft == draft:
            return raw
        return draft.to_json()
