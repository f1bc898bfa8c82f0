"""LocalEngine: the Engine protocol on this machine, with FFmpeg.

instructions -> EditSpec -> analysis (silences, loudness, scenes: only what the edit
needs) -> plan (the segments to keep) -> timeline (the Draft) -> render (the picture and
the sound rendered at once by two FFmpeg runs, the sound after its loudness pass, then
joined). Where the plan falls short of the edit (a reel shorter than asked), the draft's
warnings say why. Every step after `open_session` works from its
typed state (`LocalSession`, `LocalRender`), kept as JSON in the ledger, so a restarted
daemon can rebuild the session from the ledger and carry on.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import av
import av.error

from nemowatch import progress
from nemowatch.engines.base import (
    EDIT_FRAME,
    Credits,
    Draft,
    EditEvent,
    EditEventKind,
    Frame,
    Job,
    Media,
    Render,
    RenderState,
    RenderStatus,
    Session,
)
from nemowatch.engines.local import speech
from nemowatch.engines.local.analysis import Analysis, Segment, analyse
from nemowatch.engines.local.captions import plan_captions
from nemowatch.engines.local.effects import Effects
from nemowatch.engines.local.ffmpeg import Capabilities, Choice, choose_ffmpeg
from nemowatch.engines.local.footage import Footage, footage_of
from nemowatch.engines.local.loudness import with_prediction
from nemowatch.engines.local.music import ensure_mood, resolve_music
from nemowatch.engines.local.plan import empty_trim, plan_segments, short_reel
from nemowatch.engines.local.render import render, subtitles_beside
from nemowatch.engines.local.speech import Transcript
from nemowatch.engines.local.state import LocalRender, LocalSession
from nemowatch.engines.local.timeline import (
    SourceFacts,
    TimelineFacts,
    build_draft,
    music_of,
    output_size,
    retarget,
    texts_of,
)
from nemowatch.errors import EngineError, MediaError
from nemowatch.language import Interpretation, interpret
from nemowatch.probe import MediaKind, Probe, StreamInfo, kind_of, probe
from nemowatch.rules import EditSpec, ExportSpec, SilenceCut

RENDER_STEM = "render"  # the render is work_dir/render.<format>
FONT = "data/fonts/NotoSansCJKsc-Bold-subset.otf"  # inside the package; see its README


@dataclass(frozen=True)
class LocalPlan:
    """How the local engine arrived at a draft (what `nemowatch explain` shows)."""

    interpretation: Interpretation
    edit: EditSpec
    export: ExportSpec
    analysis: Analysis
    segments: tuple[Segment, ...]
    draft: Draft


class LocalEngine:
    """Edits on this machine with FFmpeg; needs no account and no network."""

    name = "local"
    shares_sessions = False  # see Engine
    render_deadline: float | None = None  # the pipeline's own

    def __init__(
        self,
        *,
        ffmpeg: str | os.PathLike[str] | None = None,
        environ: Mapping[str, str] | None = None,
        cache_dir: Path | None = None,
    ) -> None:
        """`cache_dir` keeps the generated music loops between jobs; without it each job
        generates the loop it needs in its own work folder (about a second)."""
        self._ffmpeg_choice = ffmpeg
        self._environ = environ
        self._choice: Choice | None = None
        self._cache_dir = cache_dir
        self._transcriber = speech.Transcriber(environ)

    @property
    def choice(self) -> Choice:
        """The FFmpeg binary and why it was chosen, found on first use (explicit >
        $NEMOWATCH_FFMPEG > the system's, when capable > the bundled one)."""
        if self._choice is None:
            self._choice = choose_ffmpeg(self._ffmpeg_choice, environ=self._environ)
        return self._choice

    @property
    def capabilities(self) -> Capabilities:
        return self.choice.ffmpeg

    @property
    def ffmpeg(self) -> Path:
        """The FFmpeg binary's path."""
        return self.choice.ffmpeg.path

    async def open_session(self, job: Job) -> Session:
        try:
            job.work_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise EngineError(f"could not create the work folder {job.work_dir}: {exc}") from exc
        return LocalSession.of_job(job).session()

    async def join_session(self, session: Session, job: Job) -> Session:
        return await self.open_session(job)  # never shared: a session is a job's work folder

    async def upload(self, session: Session, source: Path) -> Media:
        # What the file is, by its content (a photo named .mp4 is a photo): a file that is
        # neither a video, a photo nor a sound file fails here, before any work.
        state = LocalSession.of(session)
        name = source.name
        if source.is_dir():  # a batch's folder: its files joined are what is edited
            source = (await self._footage(state)).path
        facts = await asyncio.to_thread(probe, source)
        kind = await asyncio.to_thread(kind_of, source, facts)
        picture = facts.video
        duration = facts.duration
        if kind is MediaKind.PHOTO:
            duration = state.edit_spec().still.duration
        elif kind is MediaKind.SOUND:
            duration = (facts.audio.duration if facts.audio else None) or facts.duration
        elif picture is not None:
            duration = picture.duration or facts.duration
        return Media(
            name=name,
            duration=duration,
            width=picture.width if picture else None,
            height=picture.height if picture else None,
            fps=picture.fps if picture else None,
            has_audio=facts.audio is not None,
            data={
                "path": str(source),
                "format": facts.format_name,
                "kind": str(kind),
                "video_codec": picture.codec if picture else None,
            },
        )

    async def edit(self, session: Session, instruction: str) -> AsyncIterator[EditEvent]:
        """What the engine understood of one instruction. The draft is planned from the
        job's instructions (the session's), read once, in `plan`."""
        if instruction not in LocalSession.of(session).instructions:
            yield EditEvent(
                EditEventKind.WARNING,
                f'the local engine plans from the rule\'s instructions; "{instruction}" is not'
                " one of them and is ignored",
                data={"phrase": instruction},
            )
            return
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
        return (await self.plan(session)).draft

    async def plan(self, session: Session) -> LocalPlan:
        """Everything the draft is made of: the spec, the analysis, the kept segments."""
        progress.report("analysing")
        state = LocalSession.of(session)
        source = state.source
        edit = state.edit_spec()
        export = state.export_spec(state.export)
        footage = await self._footage(state)
        facts = await asyncio.to_thread(probe, footage.path)
        video = _video_of(facts, source)
        # A missing music file is the rule's mistake: say so now, before any work.
        music = resolve_music(edit.music, job_id=state.job_id) if edit.music else None
        watermark = _watermark_file(edit)  # so is a missing watermark image
        duration = video.duration or facts.duration
        has_audio = facts.audio is not None
        width, height = video.width, video.height
        if width and height and await asyncio.to_thread(_is_turned, footage.path):
            width, height = height, width  # a phone held upright: shown turned a quarter
        analysis = await analyse(
            footage.path,
            _listening(edit),
            ffmpeg=self.ffmpeg,
            duration=duration,
            has_audio=has_audio,
            fps=video.fps,
            transcribe=self._words(state, edit, footage.path),
            levels=_predicts_loudness(edit),
        )
        segments = plan_segments(duration=duration, fps=video.fps, spec=edit, analysis=analysis)
        if not segments:
            raise _nothing_left(source, edit, analysis, duration)
        short = short_reel(segments, duration=duration, fps=video.fps, spec=edit, analysis=analysis)
        captions, unheard = plan_captions(
            analysis.transcript,
            segments,
            edit,
            size=caption_frame(width, height, (edit.aspect, *state.aspects), export),
            source_name=source.name,
            export_format=export.format,
        )
        draft = build_draft(
            segments,
            source=SourceFacts(
                name=source.name,
                duration=duration,
                width=width,
                height=height,
                fps=video.fps,
                has_audio=has_audio,
                format=facts.format_name,
            ),
            edit=edit,
            export=export,
            speech=analysis.speech(),
            music=music,
            warnings=([short] if short is not None else []) + unheard,
            captions=captions,
            watermark=watermark,
        )
        draft = footage.parted(with_prediction(draft, analysis.levels))
        return LocalPlan(
            interpretation=state.reading,
            edit=edit,
            export=export,
            analysis=analysis,
            segments=tuple(segments),
            draft=draft,
        )

    def _words(
        self, state: LocalSession, edit: EditSpec, footage: Path
    ) -> Callable[[], Awaitable[Transcript]] | None:
        """What hears the source's words, when the edit needs them (captions, fillers):
        the transcript a previous run of the job saved, or speech to text in a thread."""
        if edit.captions is None and edit.remove_fillers is None:
            return None
        fillers = edit.remove_fillers is not None
        language = edit.captions.language if edit.captions is not None else None

        async def hear() -> Transcript:
            saved = await asyncio.to_thread(speech.read_cached, state.work_dir, fillers=fillers)
            if saved is not None:
                return saved
            progress.report("transcribing")
            stop = threading.Event()
            try:
                heard = await asyncio.to_thread(
                    self._transcriber.transcribe,
                    footage,
                    language=language,
                    fillers=fillers,
                    stop=stop,
                )
            except asyncio.CancelledError:
                stop.set()  # the thread ends at its next window instead of running on
                raise
            await asyncio.to_thread(speech.save, state.work_dir, heard, fillers=fillers)
            return heard

        return hear

    async def export(
        self, session: Session, draft: Draft, spec: ExportSpec, frame: Frame = EDIT_FRAME
    ) -> Render:
        state = LocalSession.of(session)
        spec = state.export_spec(spec)
        draft = retarget(draft, spec, frame)  # one plan, re-targeted for each output
        # each output its own file: an earlier one may still be linked from the outbox
        stem = f"{RENDER_STEM}-{frame.output}" if frame.output else RENDER_STEM
        destination = state.work_dir / f"{stem}{spec.extension}"
        music = await self._music_file(state, draft, spec)
        mark = Effects.of(draft).watermark
        if mark is not None and not Path(mark.path).is_file():
            raise MediaError(
                f"the watermark image {mark.path} is gone (it was there when the edit was planned)",
                hint="put the image back, or change the rule's `watermark`, then retry the job",
            )
        with resources.as_file(resources.files("nemowatch").joinpath(FONT)) as font:
            if texts_of(draft) and not font.is_file():
                raise EngineError(
                    f"the font for titles is missing from the installation ({font})",
                    hint="reinstall nemowatch",
                )
            footage = await self._footage(state)
            report = await render(
                draft, spec, footage.path, destination, ffmpeg=self.capabilities, font=font,
                music=music,
            )  # fmt: skip
        width, height = TimelineFacts.of(draft).output_size
        return LocalRender(
            job_id=state.job_id,
            path=destination,
            format=spec.format,
            duration_ms=draft.duration_ms,
            loudness=report.normalization,
            loudness_detail=report.reason,
            measured=report.measured,
            subtitles=subtitles if (subtitles := subtitles_beside(destination)).is_file() else None,
            width=width,
            height=height,
            smart=dict(report.smart.to_json()),
        ).render()

    async def poll(self, render: Render) -> RenderStatus:
        if LocalRender.of(render).path.is_file():
            return RenderStatus(RenderState.COMPLETED, progress=100.0)
        return RenderStatus(
            RenderState.LOST,
            error="the render did not finish (the process running it stopped); export again",
        )

    async def download(self, render: Render, dest: Path) -> None:
        await asyncio.to_thread(_link_or_copy, LocalRender.of(render).path, dest)

    async def edit_checkpoint(self, session: Session) -> str | None:
        return None  # instructions are parsed here, free to repeat: nothing to confirm

    async def edit_landed(self, session: Session, checkpoint: str) -> bool:
        return False  # never asked: there is no checkpoint to compare

    async def credits(self) -> Credits | None:
        return None  # the local engine costs nothing

    async def close(self) -> None:
        return None

    async def _footage(self, state: LocalSession) -> Footage:
        """The video the job edits: its source, or the footage made of its photo or sound
        (made again when missing, so a job resumed on another run finds it)."""
        return await footage_of(
            state.source,
            work_dir=state.work_dir,
            edit=state.edit_spec(),
            export=state.export_spec(state.export),
            ffmpeg=self.ffmpeg,
        )

    async def _music_file(self, state: LocalSession, draft: Draft, spec: ExportSpec) -> Path | None:
        bed = music_of(draft)
        if bed is None or spec.format == "gif":
            return None
        if bed.generated:
            cache = self._cache_dir or state.work_dir / "music"
            return await ensure_mood(bed.source, cache, ffmpeg=self.ffmpeg)
        track = Path(bed.source)
        if not track.is_file():
            raise MediaError(
                f"the music {track} is gone (it was there when the edit was planned)",
                hint="put the track back, or change the rule's `music`, then retry the job",
            )
        return track


def caption_frame(
    width: int | None, height: int | None, aspects: Sequence[str | None], export: ExportSpec
) -> tuple[int | None, int | None]:
    """The frame captions are laid out for: of the outputs' frames (`aspects`, None the
    source's), the narrowest, so that their lines fit every output of the job."""
    sizes = [output_size(width, height, aspect, export) for aspect in aspects]
    known = [(across, down) for across, down in sizes if across and down]
    if not known:
        return sizes[0] if sizes else (None, None)
    return min(known, key=lambda size: size[0] / size[1])


def _video_of(facts: Probe, source: Path) -> StreamInfo:
    """The video stream the edit works on (footage made of a photo or a sound has one)."""
    if facts.video is None:
        raise MediaError(
            f"{source.name} is not a readable video (it has no video stream)",
            hint="check that the file plays, then export it again and drop the new copy",
        )
    return facts.video


def _watermark_file(edit: EditSpec) -> str | None:
    """The watermark image's path, absolute; raises MediaError when there is none there.
    (In `edit:` it is relative to the rule's file, made absolute when the config loads; in
    instructions, to the folder nemowatch runs in.)"""
    if edit.watermark is None:
        return None
    path = Path(edit.watermark.file).expanduser()
    if not path.is_file():
        raise MediaError(
            f"there is no watermark image at {path.absolute()}",
            hint="put the image there, or change the rule's `watermark` (a PNG with"
            " transparency works best)",
        )
    return str(path.absolute())


def _listening(edit: EditSpec) -> EditSpec:
    # Music ducked under speech needs to know where the speech is: the silence pass, even
    # when the edit cuts no silences. Only the analysis sees this spec, never the planner.
    if edit.music and edit.duck and not edit.mute and edit.cut_silences is None:
        return edit.model_copy(update={"cut_silences": SilenceCut()})
    return edit


def _predicts_loudness(edit: EditSpec) -> bool:
    """Whether the analysis measures the source's levels, from which the render knows the
    edited sound's loudness: where the sound is normalised and is the source's, cut, at a
    gain (not mixed with music, nor changed by speed or effects: those are measured by
    the render, see `loudness.predicted`)."""
    changed = edit.speed not in (None, 1.0) or edit.denoise is not None
    changed = changed or edit.reverse or edit.loop is not None
    return edit.normalize and not edit.mute and edit.music is None and not changed


def _nothing_left(source: Path, edit: EditSpec, analysis: Analysis, duration: float) -> MediaError:
    empty = empty_trim(duration, edit.trim)
    if empty is not None:
        return MediaError(
            f"{empty}: the edit keeps nothing of {source.name}",
            hint="shorten the rule's `trim` (or its phrase), or drop a longer video",
        )
    cut = edit.cut_silences
    if cut is not None and analysis.silences and not analysis.speech():
        return MediaError(
            f"{source.name} is silent throughout (below {cut.threshold_db:g} dB): "
            "cutting its silences would leave nothing",
            hint="lower `threshold_db` under the rule's `edit.cut_silences`, "
            "or drop the file into a folder whose rule does not cut silences",
        )
    return MediaError(
        f"the edit keeps nothing of {source.name}",
        hint="check the rule's `trim` (does it start after the end?) and `cut_silences`",
    )


def _is_turned(source: Path) -> bool:
    """Whether the video asks to be shown turned by a quarter (portrait phone footage)."""
    try:
        with av.open(str(source), metadata_errors="ignore") as container:
            for frame in container.decode(video=0):
                return abs(int(getattr(frame, "rotation", 0) or 0)) % 180 == 90
    except (av.error.FFmpegError, OSError, ValueError):
        return False
    return False


def _link_or_copy(rendered: Path, dest: Path) -> None:
    """Put the render at `dest`. An OSError (the outbox not writable, full) is left to the
    caller, who knows which outbox and which job it concerns."""
    if not rendered.is_file():
        raise EngineError(
            f"the rendered file {rendered} is missing", retryable=True, hint="export again"
        )
    dest.unlink(missing_ok=True)
    try:
        # A hard link is instant and leaves the render in the work folder, so an
        # interrupted download can simply be repeated.
        os.link(rendered, dest)
    except OSError:
        shutil.copyfile(rendered, dest)  # another file system, or no hard links there
