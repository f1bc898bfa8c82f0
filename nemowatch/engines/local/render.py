"""The local engine's executor: a Draft becomes FFmpeg arguments (pure), then one render.

The output is H.264 High / yuv420p with AAC 48 kHz stereo in an MP4 whose index comes
first (fast start). Cuts are one filter graph: each kept segment is trimmed from a split
of the source's video and audio, the audio fades over 10 ms at each cut (a hard cut in a
waveform clicks), and `concat` joins the segments.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from nemowatch.engines.base import Draft
from nemowatch.engines.local.analysis import format_number
from nemowatch.engines.local.ffmpeg import major_version, run_ffmpeg
from nemowatch.engines.local.plan import Segment, segments_of
from nemowatch.errors import EngineError
from nemowatch.probe import Probe
from nemowatch.rules import ExportSpec, Quality

# quality -> (x264 CRF, x264 preset); the presets are fast enough for two-core machines.
QUALITY_SETTINGS: dict[Quality, tuple[int, str]] = {
    Quality.LOW: (28, "veryfast"),
    Quality.MEDIUM: (23, "veryfast"),
    Quality.HIGH: (20, "faster"),
}
AUDIO_BITRATE = "160k"
AUDIO_SAMPLE_RATE = 48000
AUDIO_CHANNELS = 2
CUT_FADE = 0.01  # seconds of audio fade on each side of a cut

# Linux refuses a single argument longer than 128 KiB: longer graphs go through a file.
FILTER_SCRIPT_THRESHOLD = 64 * 1024
# A segment ending this close to the source's end is not a cut (no fade needed there).
_END_TOLERANCE = 0.001


def scale_filter(spec: ExportSpec) -> str:
    """Scale to the target short side without distortion, to even dimensions (H.264 4:2:0).

    Expressions rather than numbers: FFmpeg applies a phone's rotation before this
    filter, so only it knows which side is short.
    """
    short_side = spec.short_side
    if short_side is None:
        return "scale=trunc(iw/2)*2:trunc(ih/2)*2"
    return f"scale=w='if(lt(iw,ih),{short_side},-2)':h='if(lt(iw,ih),-2,{short_side})'"


def is_cut(draft: Draft) -> bool:
    """Whether the draft keeps anything less than the whole source."""
    segments = segments_of(draft)
    source_duration = draft.metadata.get("source_duration_ms")
    if len(segments) != 1 or source_duration is None:
        return True
    (only,) = segments
    return only.start > 0 or only.end < source_duration / 1000 - _END_TOLERANCE


def filter_graph(draft: Draft, spec: ExportSpec, *, has_audio: bool) -> str:
    """The filter graph that cuts, joins and scales: outputs `[video]` (and `[audio]`)."""
    segments = segments_of(draft)
    if not segments:
        raise EngineError("the draft keeps nothing of the source: there is nothing to render")
    source_duration_ms = draft.metadata.get("source_duration_ms")
    source_end = source_duration_ms / 1000 if source_duration_ms is not None else None
    count = len(segments)
    labels = range(count)
    chains = [f"[0:V:0]split={count}" + "".join(f"[v{index}]" for index in labels)]
    chains += [
        f"[v{index}]trim={_trim_range(segment)},setpts=PTS-STARTPTS[v{index}c]"
        for index, segment in zip(labels, segments, strict=True)
    ]
    joined = "".join(f"[v{index}c]" for index in labels)
    if has_audio:
        chains.append(f"[0:a:0]asplit={count}" + "".join(f"[a{index}]" for index in labels))
        chains += [
            f"[a{index}]atrim={_trim_range(segment)},asetpts=PTS-STARTPTS"
            f"{_fades(segment, source_end)}[a{index}c]"
            for index, segment in zip(labels, segments, strict=True)
        ]
        joined = "".join(f"[v{index}c][a{index}c]" for index in labels)
        chains.append(f"{joined}concat=n={count}:v=1:a=1[joined][audio]")
    else:
        chains.append(f"{joined}concat=n={count}:v=1:a=0[joined]")
    chains.append(f"[joined]{scale_filter(spec)},format=yuv420p[video]")
    return ";".join(chains)


def render_arguments(
    draft: Draft,
    spec: ExportSpec,
    source: Path,
    source_probe: Probe,
    output: Path,
    *,
    filter_script: Path | None = None,
    filter_script_option: str = "-/filter_complex",
) -> list[str]:
    """The FFmpeg arguments that render `draft` of `source` to `output`.

    With `filter_script`, the filter graph is read from that file (written by the caller)
    through `filter_script_option` instead of being passed inline.
    """
    has_audio = source_probe.audio is not None
    arguments = ["-hide_banner", "-nostdin", "-nostats", "-loglevel", "error", "-y"]
    arguments += ["-i", str(source)]
    if is_cut(draft):
        if filter_script is not None:
            arguments += [filter_script_option, str(filter_script)]
        else:
            arguments += ["-filter_complex", filter_graph(draft, spec, has_audio=has_audio)]
        arguments += ["-map", "[video]"]
        if has_audio:
            arguments += ["-map", "[audio]"]
    else:
        arguments += ["-map", "0:V:0"]
        if has_audio:
            arguments += ["-map", "0:a:0"]
        arguments += ["-vf", f"{scale_filter(spec)},format=yuv420p"]
    crf, preset = QUALITY_SETTINGS[spec.quality]
    arguments += ["-c:v", "libx264", "-profile:v", "high", "-preset", preset]
    arguments += ["-crf", str(crf), "-pix_fmt", "yuv420p"]
    if has_audio:
        arguments += ["-c:a", "aac", "-b:a", AUDIO_BITRATE]
        arguments += ["-ar", str(AUDIO_SAMPLE_RATE), "-ac", str(AUDIO_CHANNELS)]
    # Chapters point into the uncut source; fast start puts the index before the data.
    arguments += ["-map_chapters", "-1", "-movflags", "+faststart", "-f", "mp4", str(output)]
    return arguments


async def render(
    draft: Draft,
    spec: ExportSpec,
    source: Path,
    source_probe: Probe,
    destination: Path,
    *,
    ffmpeg: Path,
) -> None:
    """Render `draft` to `destination`, which appears only once it is complete."""
    partial = destination.with_name(f".{destination.stem}.partial.mp4")
    filter_script: Path | None = None
    option = "-/filter_complex"
    if is_cut(draft):
        graph = filter_graph(draft, spec, has_audio=source_probe.audio is not None)
        if len(graph) > FILTER_SCRIPT_THRESHOLD:
            filter_script = destination.with_name(f"{destination.stem}.filtergraph.txt")
            _write_text(filter_script, graph)
            version = major_version(ffmpeg)
            if version is not None and version < 7:  # `-/option file` arrived in FFmpeg 7
                option = "-filter_complex_script"
    arguments = render_arguments(
        draft,
        spec,
        source,
        source_probe,
        partial,
        filter_script=filter_script,
        filter_script_option=option,
    )
    try:
        await run_ffmpeg(arguments, ffmpeg=ffmpeg)
        os.replace(partial, destination)
    except OSError as exc:
        raise EngineError(f"could not move the render into place: {exc}") from exc
    finally:
        partial.unlink(missing_ok=True)


def _trim_range(segment: Segment) -> str:
    return f"start={format_number(segment.start)}:end={format_number(segment.end)}"


def _fades(segment: Segment, source_end: float | None) -> str:
    fade = min(CUT_FADE, segment.duration / 2)
    fades: Sequence[str] = []
    if segment.start > 0:
        fades = [f"afade=t=in:st=0:d={format_number(fade)}"]
    if source_end is None or segment.end < source_end - _END_TOLERANCE:
        start = format_number(segment.duration - fade)
        fades = [*fades, f"afade=t=out:st={start}:d={format_number(fade)}"]
    return "".join(f",{item}" for item in fades)


def _write_text(path: Path, text: str) -> None:
    try:
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise EngineError(f"could not write the filter graph to {path}: {exc}") from exc
