"""LocalEngine: the Engine protocol on this machine, with FFmpeg.

instructions -> EditSpec -> analysis (silences) -> plan (a Draft) -> render (one FFmpeg
run). Every step after `open_session` works from `Session.data` alone, so a restarted
daemon can rebuild the session from the ledger and carry on.
"""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any

from nemowatch.engines.base import (
    Credits,
    Draft,
    EditEvent,
    EditEventKind,
    Job,
    Media,
    Render,
    RenderState,
    RenderStatus,
    Session,
)
from nemowatch.engines.local.analysis import detect_silences
from nemowatch.engines.local.ffmpeg import find_ffmpeg
from nemowatch.engines.local.instructions import interpret, parse_instructions
from nemowatch.engines.local.plan import Segment, draft_from_segments, kept_segments
from nemowatch.engines.local.render import render
from nemowatch.errors import EngineError, MediaError
from nemowatch.probe import Probe, probe
from nemowatch.rules import EditSpec, ExportSpec

SUPPORTED_EXTENSIONS = frozenset(
    {
        ".mp4", ".mov", ".m4v", ".mkv", ".webm", ".avi", ".mts", ".m2ts", ".ts",
        ".mpg", ".mpeg", ".wmv", ".flv", ".3gp",
    }
)  # fmt: skip
RENDER_NAME = "render.mp4"


class LocalEngine:
    """Edits on this machine with FFmpeg; needs no account and no network."""

    name = "local"

    def __init__(
        self,
        *,
        ffmpeg: str | os.PathLike[str] | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        self._ffmpeg_choice = ffmpeg
        self._environ = environ
        self._ffmpeg: Path | None = None

    @property
    def ffmpeg(self) -> Path:
        """The FFmpeg binary, found on first use (explicit > $NEMOWATCH_FFMPEG > detection)."""
        if self._ffmpeg is None:
            self._ffmpeg = find_ffmpeg(self._ffmpeg_choice, environ=self._environ)
        return self._ffmpeg

    async def open_session(self, job: Job) -> Session:
        try:
            job.work_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise EngineError(f"could not create the work folder {job.work_dir}: {exc}") from exc
        data: dict[str, Any] = {
            "job_id": job.id,
            "source": str(job.source),
            "instructions": list(job.instructions),
            # Only the fields the rule sets: they win over the text, the rest must not.
            "edit": job.edit.model_dump(mode="json", exclude_unset=True),
            "export": job.export.model_dump(mode="json"),
            "work_dir": str(job.work_dir),
        }
        return Session(id=f"local-{job.id}", data=data)

    async def upload(self, session: Session, source: Path) -> Media:
        if source.suffix.lower() not in SUPPORTED_EXTENSIONS:
            supported = " ".join(sorted(extension[1:] for extension in SUPPORTED_EXTENSIONS))
            raise MediaError(
                f"{source.name} is not a supported video file "
                f"(extension {source.suffix or '(none)'!r}); supported: {supported}",
                hint="convert it to MP4 or MOV, or narrow the rule's `match` patterns",
            )
        facts = await asyncio.to_thread(probe, source)
        video = facts.video
        if video is None:
            raise MediaError(
                f"{source.name} is not a readable video (it has no video stream)",
                hint="the local engine edits videos; audio-only files are not supported",
            )
        return Media(
            name=source.name,
            duration=video.duration or facts.duration,
            width=video.width,
            height=video.height,
            fps=video.fps,
            has_audio=facts.audio is not None,
            data={"path": str(source), "format": facts.format_name, "video_codec": video.codec},
        )

    async def edit(self, session: Session, instruction: str) -> AsyncIterator[EditEvent]:
        instructions = session.data.setdefault("instructions", [])
        if instruction not in instructions:
            # An instruction sent only here (not in the job) still shapes the draft.
            instructions.append(instruction)
        interpretation = interpret(instruction)
        for operation in interpretation.operations:
            yield EditEvent(
                EditEventKind.TEXT,
                f"will {operation.description}",
                data={"phrase": operation.phrase},
            )
        for phrase in interpretation.not_understood:
            yield EditEvent(
                EditEventKind.WARNING,
                f'not understood by the local engine, ignored: "{phrase}"',
                data={"phrase": phrase},
            )

    async def draft(self, session: Session) -> Draft:
        source = Path(session.data["source"])
        edit = edit_spec(session)
        facts = await asyncio.to_thread(probe, source)
        video = facts.video
        if video is None:
            raise MediaError(f"{source.name} is not a readable video (it has no video stream)")
        duration = video.duration or facts.duration
        segments = [Segment(0.0, duration)]
        cut = edit.cut_silences
        # Without an audio stream there is nothing to hear, so nothing counts as silence.
        if cut is not None and facts.audio is not None:
            silences = await detect_silences(
                source, cut, ffmpeg=self.ffmpeg, duration=facts.audio.duration or duration
            )
            segments = kept_segments(duration, silences, cut, video.fps)
            if not segments:
                raise MediaError(
                    f"{source.name} is silent throughout (below {cut.threshold_db:g} dB): "
                    "cutting its silences would leave nothing",
                    hint="lower `threshold_db` under the rule's `edit.cut_silences`, "
                    "or drop the file into a folder whose rule does not cut silences",
                )
        return draft_from_segments(
            segments,
            source_name=source.name,
            source_duration=duration,
            width=video.width,
            height=video.height,
            fps=video.fps,
            has_audio=facts.audio is not None,
        )

    async def export(self, session: Session, draft: Draft, spec: ExportSpec) -> Render:
        source = Path(session.data["source"])
        destination = Path(session.data["work_dir"]) / RENDER_NAME
        facts: Probe = await asyncio.to_thread(probe, source)
        await render(draft, spec, source, facts, destination, ffmpeg=self.ffmpeg)
        return Render(
            id=f"local-{session.data['job_id']}",
            data={"path": str(destination), "duration_ms": draft.duration_ms},
        )

    async def poll(self, render: Render) -> RenderStatus:
        if Path(render.data["path"]).is_file():
            return RenderStatus(RenderState.COMPLETED, progress=100.0)
        return RenderStatus(
            RenderState.LOST,
            error="the render did not finish (the process running it stopped); export again",
        )

    async def download(self, render: Render, dest: Path) -> None:
        await asyncio.to_thread(_link_or_copy, Path(render.data["path"]), dest)

    async def credits(self) -> Credits | None:
        return None  # the local engine costs nothing

    async def close(self) -> None:
        return None


def edit_spec(session: Session) -> EditSpec:
    """The edit a session asks for: its text instructions, overridden by the rule's `edit`."""
    from_text, _ = parse_instructions(session.data.get("instructions", []))
    return from_text.merged(EditSpec.model_validate(session.data.get("edit", {})))


def _link_or_copy(rendered: Path, dest: Path) -> None:
    if not rendered.is_file():
        raise EngineError(
            f"the rendered file {rendered} is missing", retryable=True, hint="export again"
        )
    try:
        dest.unlink(missing_ok=True)
        try:
            # A hard link is instant and leaves the render in the work folder, so an
            # interrupted download can simply be repeated.
            os.link(rendered, dest)
        except OSError:
            shutil.copyfile(rendered, dest)  # another file system, or no hard links there
    except OSError as exc:
        raise EngineError(f"could not copy the render to {dest}: {exc}") from exc
