"""FFmpeg command lines for each run (pure): the inputs (seeking, one per reading of the
source), the graph (inline, or from a file when too long), the encoders and the container.

Outputs: MP4/MOV (H.264 High, yuv420p, AAC 48 kHz stereo, index first), WebM (VP9, Opus
48 kHz stereo), GIF (one palette per frame, at most 15 fps and 480 pixels, no sound: one
run, no audio).
"""

from __future__ import annotations

from pathlib import Path

from nemowatch.engines.base import Draft
from nemowatch.engines.local.analysis import format_number
from nemowatch.engines.local.effects import Effects
from nemowatch.engines.local.graph import (
    AUDIO_CHANNELS,
    AUDIO_SAMPLE_RATE,
    END_TOLERANCE,
    RenderFiles,
    music_path,
    uses_source_audio,
)
from nemowatch.engines.local.picture import readings_of, video_graph
from nemowatch.engines.local.sound import audio_graph, measure_graph
from nemowatch.engines.local.timeline import TimelineFacts, music_of
from nemowatch.rules import ExportSpec, Quality

# quality -> (x264 CRF, x264 preset). veryfast throughout: on two cores a 60 s 1080x1920
# reel takes about 29 s with it, 46 s with "faster" (1.1x the size at the same CRF), and
# superfast saves a quarter of the time for files half as large again.
X264_SETTINGS: dict[Quality, tuple[int, str]] = {
    Quality.LOW: (28, "veryfast"),
    Quality.MEDIUM: (23, "veryfast"),
    Quality.HIGH: (20, "veryfast"),
}


# quality -> (VP9 CRF, libvpx cpu-used): constant quality (`-b:v 0`), realtime deadline.
VP9_SETTINGS: dict[Quality, tuple[int, int]] = {
    Quality.LOW: (40, 8),
    Quality.MEDIUM: (35, 8),
    Quality.HIGH: (31, 7),
}


AAC_BITRATE = "160k"


# FFmpeg's AAC encoder searches its quantisers with "twoloop" by default: at 160 kb/s it
# takes about 6 s of CPU for two minutes of stereo sound on the benchmark machine, as much
# as the x264 encode of a small picture. Its "fast" search takes about 3.8 s (-37 %),
# sounds "very decent" at 128 kb/s by its author's account, and is FFmpeg's own choice
# for its encoder tests; `quality: low` asks for speed over size and polish, so it gets it.
AAC_CODER: dict[Quality, str] = {
    Quality.LOW: "fast",
    Quality.MEDIUM: "twoloop",
    Quality.HIGH: "twoloop",
}


OPUS_BITRATE = "128k"


def video_encoder_arguments(spec: ExportSpec) -> list[str]:
    """Codec and quality options of the export's video."""
    if spec.format == "gif":
        return ["-c:v", "gif"]
    if spec.format == "webm":
        crf, cpu_used = VP9_SETTINGS[spec.quality]
        arguments = ["-c:v", "libvpx-vp9", "-crf", str(crf), "-b:v", "0"]
        arguments += ["-deadline", "realtime", "-cpu-used", str(cpu_used)]
        return [*arguments, "-row-mt", "1", "-tile-columns", "1", "-pix_fmt", "yuv420p"]
    crf, preset = X264_SETTINGS[spec.quality]
    arguments = ["-c:v", "libx264", "-profile:v", "high", "-preset", preset]
    return [*arguments, "-crf", str(crf), "-pix_fmt", "yuv420p"]


def audio_encoder_arguments(spec: ExportSpec) -> list[str]:
    """Codec options of the export's sound (none for a GIF)."""
    if spec.format == "gif":
        return []
    if spec.format == "webm":
        arguments = ["-c:a", "libopus", "-b:a", OPUS_BITRATE]
    else:
        arguments = ["-c:a", "aac", "-aac_coder", AAC_CODER[spec.quality], "-b:a", AAC_BITRATE]
    return [*arguments, "-ar", str(AUDIO_SAMPLE_RATE), "-ac", str(AUDIO_CHANNELS)]


def container_arguments(spec: ExportSpec, *, fast_start: bool = True) -> list[str]:
    """Container options of the export's format. `fast_start` (MP4, MOV): the index before
    the data, so players can start before the end arrives (the parts of a render, joined
    later, need none)."""
    if spec.format == "gif":
        return ["-loop", "0", "-f", "gif"]
    if spec.format == "webm":
        return ["-f", "webm"]
    return [*(["-movflags", "+faststart"] if fast_start else []), "-f", spec.format]


def encoder_arguments(spec: ExportSpec, *, with_audio: bool) -> list[str]:
    """Codec, quality and container options for the export's format."""
    audio = audio_encoder_arguments(spec) if with_audio else []
    return [*video_encoder_arguments(spec), *audio, *container_arguments(spec)]


def video_arguments(
    draft: Draft,
    spec: ExportSpec,
    source: Path,
    output: Path,
    files: RenderFiles,
    *,
    part: bool = False,
    filter_script: Path | None = None,
    filter_script_option: str = "-/filter_complex",
) -> list[str]:
    """The video run: `draft`'s picture of `source` to `output`, without sound.

    One input per reading of the source (`readings_of`), each seeking to its start and
    stopping at its end (on one thread each, when there are several). The inputs keep the
    source's times (`-copyts -start_at_zero`): the trims need no arithmetic, which could
    round a boundary onto the wrong frame in coarse time bases (Matroska counts in ms).
    The watermark image, if any, is the input after them.
    `part`: the sound is joined to `output` later (no fast start). With `filter_script`,
    the filter graph is read from that file (written by the caller) through
    `filter_script_option` instead of being passed inline.
    """
    arguments = _head("error")
    source_end = TimelineFacts.of(draft).source_end
    readings = readings_of(draft)
    if any(reading.start > 0 for reading in readings):
        arguments += ["-copyts", "-start_at_zero"]
    for reading in readings:
        if len(readings) > 1:
            arguments += ["-threads", "1"]
        if reading.start > 0:
            arguments += ["-ss", format_number(reading.start)]
        if source_end is None or reading.end < source_end - END_TOLERANCE:
            arguments += ["-t", format_number(reading.end - reading.start)]
        arguments += ["-an", "-sn", "-dn", "-i", str(source)]
    mark = Effects.of(draft).watermark
    if mark is not None:  # a still image: overlay holds its one frame to the end
        arguments += ["-i", mark.path]
    graph = video_graph(draft, spec, files)
    arguments += _graph_arguments(graph, filter_script, filter_script_option)
    # Chapters point into the uncut source.
    arguments += ["-map", "[video]", "-map_chapters", "-1", *video_encoder_arguments(spec)]
    return [*arguments, *container_arguments(spec, fast_start=not part), str(output)]


def audio_arguments(
    draft: Draft,
    spec: ExportSpec,
    source: Path,
    output: Path,
    files: RenderFiles,
    *,
    normalization: str = "",
    verify: bool = False,
    filter_script: Path | None = None,
    filter_script_option: str = "-/filter_complex",
) -> list[str]:
    """The audio run: `draft`'s sound, normalised by the filters `normalization`, to
    `output` (in the export's container, to be joined with the video run's). `verify`:
    what is encoded is measured on the way (its summary printed at the info level)."""
    arguments = [*_head("info" if verify else "error"), *_audio_inputs(draft, spec, source, files)]
    graph = audio_graph(draft, spec, normalization=normalization, verify=verify)
    arguments += _graph_arguments(graph, filter_script, filter_script_option)
    arguments += ["-map", "[audio]", "-map_chapters", "-1", *audio_encoder_arguments(spec)]
    return [*arguments, *container_arguments(spec, fast_start=False), str(output)]


def measure_arguments(
    draft: Draft,
    spec: ExportSpec,
    source: Path,
    files: RenderFiles,
    *,
    filter_script: Path | None = None,
    filter_script_option: str = "-/filter_complex",
) -> list[str]:
    """A measuring pass: the audio graph alone, its loudness printed (no video decoded)."""
    arguments = [*_head("info"), *_audio_inputs(draft, spec, source, files)]
    graph = measure_graph(draft, spec)
    arguments += _graph_arguments(graph, filter_script, filter_script_option)
    return [*arguments, "-map", "[audio]", "-f", "null", "-"]


def mux_arguments(spec: ExportSpec, video: Path, audio: Path, output: Path) -> list[str]:
    """Join the video run's `video` and the audio run's `audio` into `output`, the streams
    copied as they are."""
    arguments = [*_head("error"), "-i", str(video), "-i", str(audio)]
    arguments += ["-map", "0:v:0", "-map", "1:a:0", "-c", "copy", "-map_chapters", "-1"]
    return [*arguments, *container_arguments(spec), str(output)]


SUBTITLE_CODECS = {"mp4": "mov_text", "mov": "mov_text", "webm": "webvtt"}  # none in a GIF


def subtitle_arguments(
    spec: ExportSpec, video: Path, subtitles: Path, output: Path, *, language: str | None
) -> list[str]:
    """`video` with `subtitles` (SubRip) added as a soft subtitle track, all else copied."""
    arguments = [*_head("error"), "-i", str(video), "-f", "srt", "-i", str(subtitles)]
    arguments += ["-map", "0", "-map", "1:s:0", "-c", "copy", "-map_chapters", "-1"]
    arguments += ["-c:s", SUBTITLE_CODECS[spec.format]]
    if language is not None:
        arguments += ["-metadata:s:s:0", f"language={language}"]
    return [*arguments, *container_arguments(spec), str(output)]


def _graph_arguments(graph: str, script: Path | None, script_option: str) -> list[str]:
    return [script_option, str(script)] if script is not None else ["-filter_complex", graph]


def _head(loglevel: str) -> list[str]:
    return ["-hide_banner", "-nostdin", "-nostats", "-loglevel", loglevel, "-y"]


def _audio_inputs(draft: Draft, spec: ExportSpec, source: Path, files: RenderFiles) -> list[str]:
    """The audio run's inputs: the source's sound (no video decoded), the music looped."""
    arguments: list[str] = []
    if uses_source_audio(draft, spec):
        arguments += ["-vn", "-sn", "-dn", "-i", str(source)]
    if music_of(draft) is not None:
        arguments += ["-stream_loop", "-1", "-vn", "-i", str(music_path(files))]
    return arguments
