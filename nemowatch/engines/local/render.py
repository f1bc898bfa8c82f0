"""The local engine's executor: a Draft becomes FFmpeg runs, run here (a smart render's
own runs are `smartrender`'s).

Two FFmpeg runs, one after the other, then one that joins them (the streams copied, not
re-encoded): the video run encodes the picture, then the audio run encodes the sound at
the loudness the analysis measured (or, where it cannot tell, measures it first). Not at
once: a 1080p picture keeps both cores busy, so the sound's few seconds of one core
would save little time, and each FFmpeg process holds 50-70 MB (its libraries, the
source's index) beside the picture's 350 MB at 1080p. The arguments and graphs come from
the pure builders (`arguments`, `picture`, `sound`, `text`, `loudness`); this module
writes their files, runs FFmpeg, reports progress and moves the result into place. Soft
captions are added last, as a subtitle track copied in with the rest, and their .srt is
left beside the render for the outbox. Where the job only cuts and the source allows it,
the video run is a smart render instead (`smartrender`: the source's whole GOPs copied,
only the frames around each cut encoded), and falls back to the full one, logged, when it
cannot be.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field, replace
from pathlib import Path

import structlog

from nemowatch import progress
from nemowatch.engines.base import Draft
from nemowatch.engines.local.arguments import (
    SUBTITLE_CODECS,
    audio_arguments,
    measure_arguments,
    mux_arguments,
    subtitle_arguments,
    video_arguments,
)
from nemowatch.engines.local.captions import captions_of, language_tag, srt
from nemowatch.engines.local.ffmpeg import Capabilities, run_ffmpeg
from nemowatch.engines.local.graph import RenderFiles, has_sound
from nemowatch.engines.local.loudness import (
    Loudness,
    Normalization,
    NormalizationMode,
    corrected,
    normalization_plan,
    parse_summary,
    predicted,
)
from nemowatch.engines.local.picture import video_graph
from nemowatch.engines.local.smartrender import SmartRefused, SmartResult, smart_video
from nemowatch.engines.local.sound import audio_graph, measure_graph
from nemowatch.engines.local.text import text_file_contents
from nemowatch.engines.local.timeline import TimelineFacts, music_of
from nemowatch.errors import EngineError
from nemowatch.rules import ExportSpec

# Linux refuses a single argument longer than 128 KiB: longer graphs go through a file.
FILTER_SCRIPT_THRESHOLD = 64 * 1024


log = structlog.get_logger("nemowatch.engine")


@dataclass(frozen=True)
class Smartness:
    """Whether the video was smart-rendered (whole GOPs copied), or why not, and how many
    seconds of the output were copied and encoded."""

    used: bool
    reason: str  # why it was not used ("" when it was)
    copied: float = 0.0  # seconds
    encoded: float = 0.0

    def to_json(self) -> dict[str, bool | str | float]:
        return {
            "used": self.used,
            "reason": self.reason,
            "copied_s": round(self.copied, 3),
            "encoded_s": round(self.encoded, 3),
        }


@dataclass(frozen=True)
class RenderReport:
    """What a render did, kept with the Render (JSON-safe)."""

    normalization: NormalizationMode
    reason: str
    measured: dict[str, float] = field(default_factory=dict)
    smart: Smartness = field(default_factory=lambda: Smartness(False, "not tried"))


async def render(
    draft: Draft,
    spec: ExportSpec,
    source: Path,
    destination: Path,
    *,
    ffmpeg: Capabilities,
    font: Path,
    music: Path | None = None,
) -> RenderReport:
    """Render `draft` to `destination`, which appears only once it is complete.

    The video and the audio are rendered one after the other, each to a part beside
    `destination`, then joined. Text files and long filter graphs are written beside it too. The
    arguments are those `ffmpeg` understands (older forms where it lacks newer options).
    """
    if music_of(draft) is not None and music is None and has_sound(draft, spec):
        raise EngineError("the draft has music, but no music file was given to the render")
    line_by_line = not ffmpeg.text_align
    contents = text_file_contents(draft, line_by_line=line_by_line)
    text_files = tuple(
        destination.with_name(f"{destination.stem}.text-{index}.txt")
        for index in range(len(contents))
    )
    files = RenderFiles(font=font, text_files=text_files, music=music, line_by_line=line_by_line)
    partial, video_part, audio_part = (
        destination.with_name(f".{destination.stem}.{part}{destination.suffix}")
        for part in ("partial", "video", "audio")
    )
    # soft captions: a subtitle track, and an .srt kept beside the render (to publish)
    captions = captions_of(draft)
    soft = captions if captions is not None and not captions.burn else None
    subtitles = subtitles_beside(destination)
    subtitles.unlink(missing_ok=True)
    video_script = destination.with_name(f"{destination.stem}.filtergraph.txt")
    audio_script = destination.with_name(f"{destination.stem}.audio-filtergraph.txt")
    stages = _Stages(draft.duration)
    try:
        for path, text in zip(text_files, contents, strict=True):
            _write_text(path, text)
        if has_sound(draft, spec):
            smart = await _video(
                draft, spec, source, video_part, files, ffmpeg, video_script, stages, part=True
            )
            normalization, measured = await _encode_audio(
                draft, spec, source, audio_part, files, ffmpeg, audio_script, stages
            )
            progress.report("joining picture and sound")
            await run_ffmpeg(
                mux_arguments(spec, video_part, audio_part, partial), ffmpeg=ffmpeg.path
            )
            report = RenderReport(normalization.mode, normalization.reason, measured, smart)
        else:
            smart = await _video(draft, spec, source, partial, files, ffmpeg, video_script, stages)
            report = RenderReport("none", "not asked for", smart=smart)
        if soft is not None:
            _write_text(subtitles, srt(soft.cues))
        if soft is not None and spec.format in SUBTITLE_CODECS:  # a GIF has no such track
            progress.report("adding subtitles")
            await run_ffmpeg(
                subtitle_arguments(
                    spec, partial, subtitles, video_part, language=language_tag(soft.language)
                ),
                ffmpeg=ffmpeg.path,
            )
            os.replace(video_part, partial)
        try:
            os.replace(partial, destination)
        except OSError as exc:
            raise EngineError(f"could not move the render into place: {exc}") from exc
    finally:
        for path in (partial, video_part, audio_part, *text_files):
            path.unlink(missing_ok=True)
    return report


def subtitles_beside(render: Path) -> Path:
    """Where the render of soft captions leaves their SubRip file."""
    return render.with_suffix(".srt")


async def _video(
    draft: Draft,
    spec: ExportSpec,
    source: Path,
    output: Path,
    files: RenderFiles,
    ffmpeg: Capabilities,
    script: Path,
    stages: _Stages,
    *,
    part: bool = False,
) -> Smartness:
    """The video run: smart (whole GOPs copied, see `smartcut`) where the edit, the export
    and the source allow it, else (or when a check of it fails) encoded whole."""
    try:
        result: SmartResult = await smart_video(
            draft, spec, source, output, ffmpeg=ffmpeg.path, fast_start=not part,
            progress=stages.picture,
        )  # fmt: skip
    except SmartRefused as refused:
        if spec.smart != "off":
            log.info("render.smart_fallback", reason=refused.reason)
        await _encode_video(draft, spec, source, output, files, ffmpeg, script, stages, part=part)
        return Smartness(False, refused.reason)
    log.info(
        "render.smart",
        copied_seconds=round(result.copied, 3),
        encoded_seconds=round(result.encoded, 3),
        frames=result.frames,
    )
    stages.picture_done()
    return Smartness(True, "", result.copied, result.encoded)


async def _encode_video(
    draft: Draft,
    spec: ExportSpec,
    source: Path,
    output: Path,
    files: RenderFiles,
    ffmpeg: Capabilities,
    script: Path,
    stages: _Stages,
    *,
    part: bool = False,
) -> None:
    """The video run, to `output` (`part`: to be joined with the sound)."""
    script_path, option = _script_for(video_graph(draft, spec, files), script, ffmpeg)
    arguments = video_arguments(
        draft,
        spec,
        source,
        output,
        files,
        part=part,
        filter_script=script_path,
        filter_script_option=option,
    )
    await run_ffmpeg(arguments, ffmpeg=ffmpeg.path, progress=stages.picture)
    stages.picture_done()


async def _encode_audio(
    draft: Draft,
    spec: ExportSpec,
    source: Path,
    output: Path,
    files: RenderFiles,
    ffmpeg: Capabilities,
    script: Path,
    stages: _Stages,
) -> tuple[Normalization, dict[str, float]]:
    """The audio run, to `output`: the loudness as the analysis predicted it (or, where it
    cannot, measured by a pass of its own), the encode (measuring what it encodes), and
    only where that missed the target, the encode again. Returns the normalisation
    applied and the loudness it was planned from."""

    async def measure() -> Loudness | None:
        stages.sound("measuring loudness")
        script_path, option = _script_for(measure_graph(draft, spec), script, ffmpeg)
        arguments = measure_arguments(
            draft, spec, source, files, filter_script=script_path, filter_script_option=option
        )
        return parse_summary(await run_ffmpeg(arguments, ffmpeg=ffmpeg.path))

    async def encode(normalization: Normalization, *, verify: bool) -> Loudness | None:
        stages.sound("encoding sound")
        graph = audio_graph(draft, spec, normalization=normalization.filter, verify=verify)
        script_path, option = _script_for(graph, script, ffmpeg)
        arguments = audio_arguments(
            draft,
            spec,
            source,
            output,
            files,
            normalization=normalization.filter,
            verify=verify,
            filter_script=script_path,
            filter_script_option=option,
        )
        stderr = await run_ffmpeg(arguments, ffmpeg=ffmpeg.path)
        return parse_summary(stderr) if verify else None

    normalization = Normalization("none", "", "not asked for")
    measured: dict[str, float] = {}
    exact = False  # the plan's loudness was measured on this very graph
    if TimelineFacts.of(draft).normalize:
        loudness = predicted(draft, spec)
        where = "measured in the analysis"
        if loudness is None:
            loudness = await measure()
            where, exact = "measured in a pass of its own", True
        plan = normalization_plan(loudness)
        normalization = replace(plan, reason=f"{plan.reason}; {where}")
        if loudness is not None:
            values = {"input_i": loudness.integrated, "input_tp": loudness.true_peak}
            # JSON has no infinities (silence measures -inf)
            measured = {name: value for name, value in values.items() if math.isfinite(value)}
    # One gain on a graph measured as it is changes its loudness and peaks by exactly that
    # gain: nothing to verify. A prediction (the joins, the fades) or a limiter (which
    # takes some loudness with the peaks) is checked.
    verify = normalization.mode == "limiter" or (normalization.mode == "linear" and not exact)
    after = await encode(normalization, verify=verify)
    if verify:
        again = corrected(normalization, after)
        if again is not normalization:  # the encode missed the target: once more, corrected
            normalization = again
            await encode(normalization, verify=False)
    stages.sound_done()
    return normalization, measured


class _Stages:
    """What a render reports while its runs go on: the picture's progress ("rendering",
    N %) while it runs, then what the sound is doing."""

    def __init__(self, duration: float) -> None:
        self._duration = duration
        self._sound = "encoding sound"
        self._picture_running = True
        self._sound_running = True

    def picture(self, seconds: float) -> None:
        if self._duration > 0:
            progress.report("rendering", 100.0 * seconds / self._duration)

    def picture_done(self) -> None:
        self._picture_running = False
        progress.report("rendering", 100.0)
        if self._sound_running:
            progress.report(self._sound)

    def sound_done(self) -> None:
        self._sound_running = False

    def sound(self, stage: str) -> None:
        self._sound = stage
        if not self._picture_running:
            progress.report(stage)


def _script_for(graph: str, path: Path, ffmpeg: Capabilities) -> tuple[Path | None, str]:
    """Where a filter graph too long for the command line goes (written to `path`; None:
    inline), and the option that reads it."""
    if len(graph) <= FILTER_SCRIPT_THRESHOLD:
        return None, "-/filter_complex"
    _write_text(path, graph)
    return path, "-/filter_complex" if ffmpeg.option_files else "-filter_complex_script"


def _write_text(path: Path, text: str) -> None:
    try:
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise EngineError(f"could not write {path}: {exc}") from exc
