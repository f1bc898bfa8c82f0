"""The local engine's executor: a Draft becomes FFmpeg arguments (pure), then one render.

One filter graph does the whole edit:

- cuts: each kept segment is trimmed from a split of the source's video and audio (the
  audio fades over 10 ms at each cut: a hard cut in a waveform clicks) and `concat`
  joins them;
- speed: `setpts` for the video, a chain of `atempo` (each within 0.5–2) for the audio,
  so the pitch stays; then `fps` holds the frame rate;
- shape: scale to the output size; a new aspect is met by cropping, padding (black), or
  by the whole frame over a blurred copy of itself filling the frame (blurred small, at
  a quarter of the size, then scaled up: cheap);
- text: `drawtext` with the bundled font, each text read from a file (`textfile=`,
  `expansion=none`: nothing in it is ever parsed), inside the platforms' safe zones;
- fades: `fade`/`afade` on the output timeline;
- music: looped, trimmed to the output, faded, at its volume, ducked under speech by a
  volume envelope, mixed with the source's audio;
- loudness: two passes. The first runs only the audio graph, through
  `loudnorm=print_format=json`; the second applies the measurement with `linear=true`.
  loudnorm would silently switch to its dynamic mode (a compressor) when a linear gain
  cannot reach the target without peaks above the limit, or the loudness range is too
  wide; `normalization_plan` sees that coming from the measurement and applies a plain
  gain and a true-peak-safe limiter instead.

Outputs: MP4/MOV (H.264 High, yuv420p, AAC 48 kHz stereo, index first), WebM (VP9, Opus
48 kHz stereo), GIF (one palette per frame, at most 15 fps and 480 pixels, no sound).
"""

from __future__ import annotations

import json
import math
import os
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from nemowatch.engines.base import Draft
from nemowatch.engines.local.analysis import format_number
from nemowatch.engines.local.ffmpeg import major_version, run_ffmpeg
from nemowatch.engines.local.timeline import (
    DUCK_ATTACK,
    DUCK_RELEASE,
    Cut,
    MusicBed,
    TextItem,
    cuts_of,
    fps_value,
    music_of,
    source_audio_of,
    texts_of,
)
from nemowatch.errors import EngineError
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
OPUS_BITRATE = "128k"
AUDIO_SAMPLE_RATE = 48000
AUDIO_CHANNELS = 2
CUT_FADE = 0.01  # seconds of audio fade on each side of a cut

LOUDNESS_TARGET = -14.0  # LUFS, integrated
TRUE_PEAK_LIMIT = -1.0  # dBTP: what the output promises
# loudnorm aims this far below the limit: AAC and Opus decode with peaks a few tenths of
# a dB above the signal they were given.
TRUE_PEAK_TARGET = TRUE_PEAK_LIMIT - 0.5
LOUDNESS_RANGE_TARGET = 11.0  # LU
# The limiter of the fallback sees sample peaks, not true peaks: it stops another 0.5 dB
# lower, which covers the overshoot between samples of ordinary material.
LIMITER_CEILING = TRUE_PEAK_TARGET - 0.5
SILENT_LOUDNESS = -70.0  # LUFS: loudnorm's floor; quieter audio is left alone
LIMITER_CORRECTION = 6.0  # dB: the most a check may add to the limiter's gain

BLUR_DOWNSCALE = 4  # the blurred background is computed at a quarter of the size
TEXT_COLOR = "white"
TEXT_BORDER = "black@0.65"
TEXT_SHADOW = "black@0.45"
TEXT_WIDTH = 0.9  # of the frame's width: where lines are wrapped
# Safe zones: vertical video (9:16) has the platforms' buttons and captions over its top
# and bottom; other shapes keep a small margin.
VERTICAL_MARGINS = (0.15, 0.20)  # (top, bottom), fractions of the height
OTHER_MARGINS = (0.05, 0.05)
# Estimated advance widths, in ems, of the bundled font's glyphs (for wrapping).
WIDE_ADVANCE = 1.0  # CJK ideographs, kana, full-width forms
NARROW_ADVANCE = 0.6  # Latin letters and digits (bold; a little generous)
SPACE_ADVANCE = 0.25

# Linux refuses a single argument longer than 128 KiB: longer graphs go through a file.
FILTER_SCRIPT_THRESHOLD = 64 * 1024
# A segment ending this close to the source's end is not a cut (no fade needed there).
_END_TOLERANCE = 0.001

NormalizationMode = Literal["linear", "limiter", "none"]


@dataclass(frozen=True)
class RenderFiles:
    """The files a render reads besides the source, resolved by the executor."""

    font: Path
    text_files: tuple[Path, ...] = ()  # one per text of the draft, in order
    music: Path | None = None  # the music track (a generated loop or the user's file)


@dataclass(frozen=True)
class LoudnessMeasurement:
    """What loudnorm measured in the first pass."""

    input_i: float  # integrated loudness, LUFS
    input_tp: float  # true peak, dBTP
    input_lra: float  # loudness range, LU
    input_thresh: float  # gating threshold, LUFS
    target_offset: float  # dB


@dataclass(frozen=True)
class Normalization:
    """How the second pass reaches the loudness target, decided from the measurement."""

    mode: NormalizationMode
    filter: str  # filters to append to the audio graph ("" for none)
    reason: str  # in words, for logs and the render's record
    gain_db: float = 0.0


@dataclass(frozen=True)
class RenderReport:
    """What a render did, kept with the Render (JSON-safe)."""

    normalization: NormalizationMode
    reason: str
    measured: dict[str, float] = field(default_factory=dict)


# shape


def shape_chains(
    width: int,
    height: int,
    fit: str,
    aspect: str | None,
    *,
    head: str,
    before: Sequence[str] = (),
    after: Sequence[str] = (),
    tail: str,
) -> list[str]:
    """Chains that bring the video at `head` (a label such as "[joined]") to
    `width`x`height`, never distorting it, with the filters `before` and `after` on either
    side, to `tail` (output labels)."""
    size = f"{width}:{height}"
    if aspect is not None and fit == "blur":
        small = f"{_even(width / BLUR_DOWNSCALE)}:{_even(height / BLUR_DOWNSCALE)}"
        radius = max(2, round(min(width, height) / BLUR_DOWNSCALE / 10))
        return [
            _chain(head, [*before, "split=2"], "[fg][bg]"),
            _chain(
                "[bg]",
                [
                    f"scale={small}:force_original_aspect_ratio=increase:flags=fast_bilinear",
                    f"crop={small}",
                    f"boxblur={radius}:2",
                    f"scale={size}:flags=fast_bilinear",
                ],
                "[blurred]",
            ),
            _chain(
                "[fg]",
                [f"scale={size}:force_original_aspect_ratio=decrease:force_divisible_by=2"],
                "[front]",
            ),
            _chain("[blurred][front]", ["overlay=(W-w)/2:(H-h)/2", "setsar=1", *after], tail),
        ]
    if aspect is None:
        shape = [f"scale={size}"]
    elif fit == "crop":
        shape = [f"scale={size}:force_original_aspect_ratio=increase", f"crop={size}"]
    else:  # pad
        shape = [
            f"scale={size}:force_original_aspect_ratio=decrease:force_divisible_by=2",
            f"pad={size}:(ow-iw)/2:(oh-ih)/2:color=black",
        ]
    return [_chain(head, [*before, *shape, "setsar=1", *after], tail)]


def scale_filter(spec: ExportSpec) -> str:
    """Scale to the target short side without distortion, to even dimensions (H.264 4:2:0).

    For drafts that do not know the source's size: expressions rather than numbers, since
    FFmpeg applies a phone's rotation before this filter and only it knows the short side.
    """
    short_side = spec.short_side
    if short_side is None:
        return "scale=trunc(iw/2)*2:trunc(ih/2)*2"
    return f"scale=w='if(lt(iw,ih),{short_side},-2)':h='if(lt(iw,ih),-2,{short_side})'"


# text


def filter_value(value: str) -> str:
    """`value` escaped for an option of a filter inside a filter graph.

    Two levels: the option parser treats `\\ ' :` specially, the graph parser
    `\\ ' [ ] , ;`. Each level's specials are escaped with a backslash, inner level first.
    """
    inner = "".join("\\" + character if character in "\\':" else character for character in value)
    return "".join("\\" + character if character in "\\'[],;" else character for character in inner)


def text_width(text: str, font_size: float) -> float:
    """The estimated width of one line of `text` in pixels at `font_size`."""
    return sum(_advance(character) for character in text) * font_size


def wrap_text(text: str, max_width: float, font_size: float) -> str:
    """`text` broken into lines no wider than `max_width` (estimated), at spaces where it
    has them and between any two CJK characters; the user's own line breaks are kept."""
    lines: list[str] = []
    for paragraph in text.splitlines() or [""]:
        line = ""
        for word in _words(paragraph.strip()):
            candidate = line + word if line else word.lstrip()
            if not line or text_width(candidate, font_size) <= max_width:
                line = candidate
            else:
                lines.append(line.rstrip())
                line = word.lstrip()
            while text_width(line, font_size) > max_width and len(line) > 1:
                # a single word wider than the frame: break it where it overflows
                cut = len(line) - 1
                while cut > 1 and text_width(line[:cut], font_size) > max_width:
                    cut -= 1
                lines.append(line[:cut])
                line = line[cut:]
        lines.append(line.rstrip())
    return "\n".join(lines)


def font_size(item: TextItem, height: int) -> int:
    """The text's size in pixels: its share of the frame's height."""
    return max(8, round(item.size * height))


def drawtext_filter(item: TextItem, *, text_file: Path, font: Path, width: int, height: int) -> str:
    """One `drawtext` drawing `text_file` as `item` says, centred, inside the safe zones."""
    size = font_size(item, height)
    top, bottom = VERTICAL_MARGINS if height > width else OTHER_MARGINS
    if item.position == "top":
        y = str(round(top * height))
    elif item.position == "bottom":
        y = f"h-text_h-{round(bottom * height)}"
    else:
        y = "(h-text_h)/2"
    border = max(1, round(size * 0.06))
    shadow = max(1, round(size * 0.04))
    options = [
        f"fontfile={filter_value(str(font))}",
        f"textfile={filter_value(str(text_file))}",
        "expansion=none",
        f"fontsize={size}",
        f"fontcolor={TEXT_COLOR}",
        f"borderw={border}",
        f"bordercolor={TEXT_BORDER}",
        f"shadowx={shadow}",
        f"shadowy={shadow}",
        f"shadowcolor={TEXT_SHADOW}",
        f"line_spacing={round(size * 0.15)}",
        "text_align=C",
        "x=(w-text_w)/2",
        f"y={y}",
        f"enable='between(t,{format_number(item.start)},{format_number(item.end)})'",
    ]
    return "drawtext=" + ":".join(options)


def text_file_contents(draft: Draft) -> list[str]:
    """What each text file of the draft holds: its text, wrapped to the output's width."""
    width, height = _output_size(draft)
    if width is None or height is None:
        return [item.text for item in texts_of(draft)]
    return [
        wrap_text(item.text, TEXT_WIDTH * width, font_size(item, height))
        for item in texts_of(draft)
    ]


# audio


def atempo_chain(speed: float) -> list[str]:
    """`atempo` filters whose product is `speed`, each within 0.5–2 (where it sounds best)."""
    if math.isclose(speed, 1.0):
        return []
    factors: list[float] = []
    remaining = speed
    while remaining > 2.0 + 1e-9:
        factors.append(2.0)
        remaining /= 2.0
    while remaining < 0.5 - 1e-9:
        factors.append(0.5)
        remaining /= 0.5
    factors.append(remaining)
    return [f"atempo={format_number(factor)}" for factor in factors]


def duck_expression(under: Sequence[tuple[float, float]], duck_db: float) -> str:
    """A `volume` expression (of t, in seconds) for music ducked by `duck_db` under the
    `under` windows: down by the start of each window, back up DUCK_RELEASE after its end."""
    depth = 1 - 10 ** (duck_db / 20)
    terms = [
        f"clip(min((t-{format_number(start - DUCK_ATTACK)})/{format_number(DUCK_ATTACK)},"
        f"({format_number(end + DUCK_RELEASE)}-t)/{format_number(DUCK_RELEASE)}),0,1)"
        for start, end in under
    ]
    return f"1-{format_number(depth)}*({'+'.join(terms)})"


def music_filters(music: MusicBed, duration: float) -> list[str]:
    """The music (looped by its input): trimmed to the output, at its volume, ducked under
    speech, faded in and out."""
    filters = [
        f"aresample={AUDIO_SAMPLE_RATE}",
        "aformat=sample_fmts=fltp:channel_layouts=stereo",
        f"atrim=end={format_number(duration)}",
        "asetpts=PTS-STARTPTS",
        f"volume={format_number(music.volume)}",
    ]
    if music.duck_db is not None and music.duck_under:
        expression = duck_expression(music.duck_under, music.duck_db)
        filters.append(f"volume=eval=frame:volume='{expression}'")
    if music.fade_in > 0:
        filters.append(f"afade=t=in:st=0:d={format_number(music.fade_in)}")
    if music.fade_out > 0:
        start = format_number(max(0.0, duration - music.fade_out))
        filters.append(f"afade=t=out:st={start}:d={format_number(music.fade_out)}")
    return filters


def loudnorm_measure_filter() -> str:
    """The first pass's loudnorm: measure, print JSON."""
    return (
        f"loudnorm=I={format_number(LOUDNESS_TARGET)}:TP={format_number(TRUE_PEAK_TARGET)}"
        f":LRA={format_number(LOUDNESS_RANGE_TARGET)}:print_format=json"
    )


_LOUDNORM_JSON = re.compile(r"\{[^{}]*\"input_i\"[^{}]*\}", flags=re.DOTALL)


def parse_loudnorm(stderr: str) -> dict[str, str] | None:
    """The last JSON block loudnorm printed in `stderr` (values as written), or None."""
    blocks = _LOUDNORM_JSON.findall(stderr)
    if not blocks:
        return None
    try:
        parsed = json.loads(blocks[-1])
    except json.JSONDecodeError:
        return None
    if not isinstance(parsed, dict):
        return None
    return {str(key): str(value) for key, value in parsed.items()}


def parse_measurement(stderr: str) -> LoudnessMeasurement | None:
    """The first pass's measurement, or None when loudnorm printed none."""
    values = parse_loudnorm(stderr)
    if values is None:
        return None
    try:
        return LoudnessMeasurement(
            input_i=float(values["input_i"]),
            input_tp=float(values["input_tp"]),
            input_lra=float(values["input_lra"]),
            input_thresh=float(values["input_thresh"]),
            target_offset=float(values["target_offset"]),
        )
    except (KeyError, ValueError):
        return None


def normalization_plan(measurement: LoudnessMeasurement | None) -> Normalization:
    """How to reach LOUDNESS_TARGET from what the first pass measured.

    loudnorm keeps its linear mode (one gain for the whole file) only when the gain would
    leave the true peak at or under its target and the loudness range fits the range
    target (and the measurement is complete: a range of exactly 0, as of a steady tone,
    counts as missing). Otherwise it would compress dynamically, changing the sound; we
    apply the gain ourselves and let a limiter hold the peaks instead.
    """
    if measurement is None:
        return Normalization("none", "", "loudness could not be measured; left as it is")
    if not math.isfinite(measurement.input_i) or measurement.input_i <= SILENT_LOUDNESS:
        return Normalization("none", "", "the audio is silent; left as it is")
    gain = LOUDNESS_TARGET - measurement.input_i
    peak_after = measurement.input_tp + gain
    if measurement.input_lra == 0 or measurement.input_thresh <= SILENT_LOUDNESS:
        return limiter_normalization(gain, "its loudness range of 0 LU reads as unmeasured")
    if not math.isfinite(peak_after) or peak_after > TRUE_PEAK_TARGET:
        return limiter_normalization(gain, f"peaks would reach {peak_after:.1f} dBTP")
    if measurement.input_lra > LOUDNESS_RANGE_TARGET:
        return limiter_normalization(
            gain, f"the loudness range of {measurement.input_lra:g} LU is over the target"
        )
    return Normalization(
        "linear",
        (
            f"loudnorm=I={format_number(LOUDNESS_TARGET)}"
            f":TP={format_number(TRUE_PEAK_TARGET)}"
            f":LRA={format_number(LOUDNESS_RANGE_TARGET)}"
            f":measured_I={format_number(measurement.input_i)}"
            f":measured_TP={format_number(measurement.input_tp)}"
            f":measured_LRA={format_number(measurement.input_lra)}"
            f":measured_thresh={format_number(measurement.input_thresh)}"
            f":offset={format_number(measurement.target_offset)}"
            ":linear=true:print_format=json"
        ),
        f"loudnorm, linear: {gain:+.2f} dB",
        gain_db=gain,
    )


def limiter_normalization(gain: float, why: str) -> Normalization:
    """A plain gain of `gain` dB with a limiter holding the peaks (loudnorm would have gone
    dynamic, `why`)."""
    return Normalization(
        "limiter",
        limiter_filter(gain),
        f"gain {gain:+.2f} dB and a limiter: loudnorm would compress dynamically ({why})",
        gain_db=gain,
    )


def limiter_filter(gain: float) -> str:
    """`gain` dB, then a limiter at LIMITER_CEILING; its own level correction is off: it
    only catches peaks."""
    ceiling = 10 ** (LIMITER_CEILING / 20)
    return (
        f"volume={format_number(round(gain, 2))}dB,"
        f"alimiter=limit={format_number(round(ceiling, 4))}:attack=5:release=50"
        ":level=0:latency=1"
    )


def corrected_limiter(plan: Normalization, after: LoudnessMeasurement | None) -> Normalization:
    """`plan` (a gain and a limiter) with its gain corrected by what a check measured
    after it: where the limiter held many peaks it also lowered the loudness. At most
    LIMITER_CORRECTION dB either way; nothing when the result is within 0.2 LU."""
    if after is None or not math.isfinite(after.input_i):
        return plan
    error = LOUDNESS_TARGET - after.input_i
    if abs(error) < 0.2:
        return plan
    correction = max(-LIMITER_CORRECTION, min(LIMITER_CORRECTION, error))
    gain = plan.gain_db + correction
    return Normalization(
        "limiter",
        limiter_filter(gain),
        f"{plan.reason}; {correction:+.2f} dB more, for what the limiter took",
        gain_db=gain,
    )


def audio_chains(
    draft: Draft,
    *,
    music_input: str | None,
    speech_label: str | None,
    normalization: str,
) -> list[str]:
    """The audio after the cuts: speed, volume, music, fades, loudness; to `[audio]`.

    `speech_label` names the joined source audio (None: the source's audio is not used);
    `music_input` is the music's input stream, such as "1:a:0" (None: no music).
    """
    duration = draft.duration
    end = format_number(duration)
    metadata = draft.metadata
    final: list[str] = []
    fade_in, fade_out = metadata.get("fade_in"), metadata.get("fade_out")
    if fade_in:
        final.append(f"afade=t=in:st=0:d={format_number(fade_in)}")
    if fade_out:
        start = format_number(max(0.0, duration - fade_out))
        final.append(f"afade=t=out:st={start}:d={format_number(fade_out)}")
    if normalization:
        final += [normalization, f"aresample={AUDIO_SAMPLE_RATE}"]  # loudnorm runs at 192 kHz
    # Exactly as long as the video: atempo and loudnorm may leave a few samples more or less.
    final += [f"apad=whole_dur={end}", f"atrim=end={end}"]
    speech: list[str] = []
    if speech_label is not None:
        source = source_audio_of(draft)
        gain = float(source.get("m", {}).get("volume", 1.0)) if source else 1.0
        speech = atempo_chain(float(metadata.get("speed", 1.0)))
        if not math.isclose(gain, 1.0):
            speech.append(f"volume={format_number(gain)}")
        speech += [
            f"aresample={AUDIO_SAMPLE_RATE}",
            "aformat=sample_fmts=fltp:channel_layouts=stereo",
        ]
    music = music_of(draft) if music_input is not None else None
    if speech_label is not None and music is not None:
        return [
            _chain(f"[{speech_label}]", speech, "[speech]"),
            _chain(f"[{music_input}]", music_filters(music, duration), "[music]"),
            _chain(
                "[speech][music]",
                ["amix=inputs=2:duration=longest:dropout_transition=0:normalize=0", *final],
                "[audio]",
            ),
        ]
    if speech_label is not None:
        return [_chain(f"[{speech_label}]", [*speech, *final], "[audio]")]
    if music is not None:
        return [_chain(f"[{music_input}]", [*music_filters(music, duration), *final], "[audio]")]
    return []


# the graph


def cut_chains(
    draft: Draft, *, video: str | None, audio: str | None, video_out: str, audio_out: str
) -> list[str]:
    """Trim the kept segments from the streams `video` and `audio` (input labels such as
    "0:V:0"; None: not used) and join them to `[video_out]` and `[audio_out]`."""
    cuts = cuts_of(draft)
    if not cuts:
        raise EngineError("the draft keeps nothing of the source: there is nothing to render")
    source_duration_ms = draft.metadata.get("source_duration_ms")
    source_end = source_duration_ms / 1000 if source_duration_ms is not None else None
    count = len(cuts)
    labels = range(count)
    if count == 1:  # nothing to join
        (cut,) = cuts
        chains = []
        if video is not None:
            chains.append(f"[{video}]trim={_trim_range(cut)},setpts=PTS-STARTPTS[{video_out}]")
        if audio is not None:
            chains.append(
                f"[{audio}]atrim={_trim_range(cut)},asetpts=PTS-STARTPTS"
                f"{_fades(cut, source_end)}[{audio_out}]"
            )
        return chains
    chains = []
    if video is not None:
        chains.append(f"[{video}]split={count}" + "".join(f"[v{index}]" for index in labels))
        chains += [
            f"[v{index}]trim={_trim_range(cut)},setpts=PTS-STARTPTS[v{index}c]"
            for index, cut in zip(labels, cuts, strict=True)
        ]
    if audio is not None:
        chains.append(f"[{audio}]asplit={count}" + "".join(f"[a{index}]" for index in labels))
        chains += [
            f"[a{index}]atrim={_trim_range(cut)},asetpts=PTS-STARTPTS"
            f"{_fades(cut, source_end)}[a{index}c]"
            for index, cut in zip(labels, cuts, strict=True)
        ]
    if video is not None and audio is not None:
        joined = "".join(f"[v{index}c][a{index}c]" for index in labels)
        chains.append(f"{joined}concat=n={count}:v=1:a=1[{video_out}][{audio_out}]")
    elif video is not None:
        joined = "".join(f"[v{index}c]" for index in labels)
        chains.append(f"{joined}concat=n={count}:v=1:a=0[{video_out}]")
    elif audio is not None:
        joined = "".join(f"[a{index}c]" for index in labels)
        chains.append(f"{joined}concat=n={count}:v=0:a=1[{audio_out}]")
    return chains


def video_chains(draft: Draft, spec: ExportSpec, files: RenderFiles) -> list[str]:
    """From the joined video `[joined]` to the output's `[video]`."""
    metadata = draft.metadata
    speed = float(metadata.get("speed", 1.0))
    timing: list[str] = []
    if not math.isclose(speed, 1.0):
        timing.append(f"setpts=PTS/{format_number(speed)}")
    fps = metadata.get("fps")
    source_fps = metadata.get("source_fps", fps)  # drafts of earlier versions: "fps" is both
    # A new rate, or a speed change (which multiplies the rate): frames are dropped or
    # repeated to hold the output's rate.
    if fps and (not math.isclose(speed, 1.0) or source_fps is None or abs(fps - source_fps) > 0.01):
        timing.append(f"fps={fps_value(float(fps))}")
    width, height = _output_size(draft)
    finish: list[str] = []
    texts = texts_of(draft)
    if texts:
        if width is None or height is None:
            raise EngineError("the draft has texts but no output size to place them in")
        if len(files.text_files) != len(texts):
            raise EngineError(f"{len(texts)} texts to draw, but {len(files.text_files)} files")
        finish += [
            drawtext_filter(item, text_file=text_file, font=files.font, width=width, height=height)
            for item, text_file in zip(texts, files.text_files, strict=True)
        ]
    duration = draft.duration
    fade_in, fade_out = metadata.get("fade_in"), metadata.get("fade_out")
    if fade_in:
        finish.append(f"fade=t=in:st=0:d={format_number(fade_in)}")
    if fade_out:
        start = format_number(max(0.0, duration - fade_out))
        finish.append(f"fade=t=out:st={start}:d={format_number(fade_out)}")
    gif = spec.format == "gif"
    # A GIF gets a palette of its own for each frame: no frame waits for the whole clip.
    finish.append("split" if gif else "format=yuv420p")
    tail = "[still][frames]" if gif else "[video]"
    if width is None or height is None:
        chains = [_chain("[joined]", [*timing, scale_filter(spec), "setsar=1", *finish], tail)]
    else:
        chains = shape_chains(
            width, height, str(metadata.get("fit", "blur")), metadata.get("aspect"),
            head="[joined]", before=timing, after=finish, tail=tail,
        )  # fmt: skip
    if gif:
        chains += [
            "[still]palettegen=max_colors=256:stats_mode=single[palette]",
            "[frames][palette]paletteuse=new=1:dither=bayer:bayer_scale=3[video]",
        ]
    return chains


def filter_graph(
    draft: Draft,
    spec: ExportSpec,
    files: RenderFiles,
    *,
    normalization: str = "",
) -> str:
    """The filter graph of the render: outputs `[video]` (and `[audio]` when it has sound).

    Inputs: 0 is the source, 1 the music (when the draft has music).
    """
    speech = _uses_source_audio(draft, spec)
    chains = cut_chains(
        draft,
        video="0:V:0",
        audio="0:a:0" if speech else None,
        video_out="joined",
        audio_out="cut",
    )
    chains += video_chains(draft, spec, files)
    if _has_sound(draft, spec):
        chains += audio_chains(
            draft,
            music_input="1:a:0" if music_of(draft) is not None else None,
            speech_label="cut" if speech else None,
            normalization=normalization,
        )
    return ";".join(chains)


def measure_graph(draft: Draft, spec: ExportSpec, *, applying: str = "") -> str:
    """The first pass's graph: only the audio, ending in loudnorm's measurement (after the
    filters `applying`, when checking what a normalisation gives)."""
    speech = _uses_source_audio(draft, spec)
    chains: list[str] = []
    if speech:
        chains = cut_chains(draft, video=None, audio="0:a:0", video_out="joined", audio_out="cut")
    music_input = f"{1 if speech else 0}:a:0" if music_of(draft) is not None else None
    chains += audio_chains(
        draft,
        music_input=music_input,
        speech_label="cut" if speech else None,
        normalization=",".join(filter(None, [applying, loudnorm_measure_filter()])),
    )
    return ";".join(chains)


def encoder_arguments(spec: ExportSpec, *, with_audio: bool) -> list[str]:
    """Codec, quality and container options for the export's format."""
    if spec.format == "gif":
        return ["-c:v", "gif", "-loop", "0", "-f", "gif"]
    if spec.format == "webm":
        crf, cpu_used = VP9_SETTINGS[spec.quality]
        arguments = ["-c:v", "libvpx-vp9", "-crf", str(crf), "-b:v", "0"]
        arguments += ["-deadline", "realtime", "-cpu-used", str(cpu_used)]
        arguments += ["-row-mt", "1", "-tile-columns", "1", "-pix_fmt", "yuv420p"]
        if with_audio:
            arguments += ["-c:a", "libopus", "-b:a", OPUS_BITRATE]
            arguments += ["-ar", str(AUDIO_SAMPLE_RATE), "-ac", str(AUDIO_CHANNELS)]
        return [*arguments, "-f", "webm"]
    crf, preset = X264_SETTINGS[spec.quality]
    arguments = ["-c:v", "libx264", "-profile:v", "high", "-preset", preset]
    arguments += ["-crf", str(crf), "-pix_fmt", "yuv420p"]
    if with_audio:
        arguments += ["-c:a", "aac", "-b:a", AAC_BITRATE]
        arguments += ["-ar", str(AUDIO_SAMPLE_RATE), "-ac", str(AUDIO_CHANNELS)]
    # fast start: the index before the data, so players can start before the end arrives
    return [*arguments, "-movflags", "+faststart", "-f", spec.format]


def render_arguments(
    draft: Draft,
    spec: ExportSpec,
    source: Path,
    output: Path,
    files: RenderFiles,
    *,
    normalization: str = "",
    filter_script: Path | None = None,
    filter_script_option: str = "-/filter_complex",
    loglevel: str = "error",
) -> list[str]:
    """The FFmpeg arguments that render `draft` of `source` to `output`.

    With `filter_script`, the filter graph is read from that file (written by the caller)
    through `filter_script_option` instead of being passed inline.
    """
    with_audio = _has_sound(draft, spec)
    arguments = ["-hide_banner", "-nostdin", "-nostats", "-loglevel", loglevel, "-y"]
    arguments += ["-i", str(source)]
    if music_of(draft) is not None and with_audio:
        arguments += ["-stream_loop", "-1", "-vn", "-i", str(_music_path(files))]
    if filter_script is not None:
        arguments += [filter_script_option, str(filter_script)]
    else:
        graph = filter_graph(draft, spec, files, normalization=normalization)
        arguments += ["-filter_complex", graph]
    arguments += ["-map", "[video]"]
    if with_audio:
        arguments += ["-map", "[audio]"]
    # Chapters point into the uncut source.
    arguments += ["-map_chapters", "-1"]
    return [*arguments, *encoder_arguments(spec, with_audio=with_audio), str(output)]


def measure_arguments(
    draft: Draft, spec: ExportSpec, source: Path, files: RenderFiles, *, applying: str = ""
) -> list[str]:
    """The first pass: the audio graph alone, its loudness printed (no video decoded).

    With `applying`, the loudness after those filters (a check of a normalisation)."""
    arguments = ["-hide_banner", "-nostdin", "-nostats", "-loglevel", "info", "-y"]
    if _uses_source_audio(draft, spec):
        arguments += ["-vn", "-sn", "-dn", "-i", str(source)]
    if music_of(draft) is not None:
        arguments += ["-stream_loop", "-1", "-vn", "-i", str(_music_path(files))]
    graph = measure_graph(draft, spec, applying=applying)
    arguments += ["-filter_complex", graph, "-map", "[audio]"]
    return [*arguments, "-f", "null", "-"]


# the executor


async def render(
    draft: Draft,
    spec: ExportSpec,
    source: Path,
    destination: Path,
    *,
    ffmpeg: Path,
    font: Path,
    music: Path | None = None,
) -> RenderReport:
    """Render `draft` to `destination`, which appears only once it is complete.

    Text files and a long filter graph are written beside `destination`.
    """
    work = destination.parent
    contents = text_file_contents(draft)
    text_files = tuple(
        work / f"{destination.stem}.text-{index}.txt" for index in range(len(contents))
    )
    for path, text in zip(text_files, contents, strict=True):
        _write_text(path, text)
    files = RenderFiles(font=font, text_files=text_files, music=music)
    if music_of(draft) is not None and music is None and _has_sound(draft, spec):
        raise EngineError("the draft has music, but no music file was given to the render")

    normalization = Normalization("none", "", "not asked for")
    measured: dict[str, float] = {}
    if draft.metadata.get("normalize") and _has_sound(draft, spec):
        stderr = await run_ffmpeg(measure_arguments(draft, spec, source, files), ffmpeg=ffmpeg)
        measurement = parse_measurement(stderr)
        normalization = normalization_plan(measurement)
        if measurement is not None:
            values = {
                "input_i": measurement.input_i,
                "input_tp": measurement.input_tp,
                "input_lra": measurement.input_lra,
            }
            # JSON has no infinities (silence measures -inf)
            measured = {name: value for name, value in values.items() if math.isfinite(value)}
        if normalization.mode == "limiter":
            normalization = await _checked(normalization, draft, spec, source, files, ffmpeg)
    stderr = await _encode(draft, spec, source, destination, files, ffmpeg, normalization)
    if normalization.mode == "linear":
        result = parse_loudnorm(stderr)
        if result is not None and result.get("normalization_type") != "linear":
            # The prediction missed: never ship loudnorm's dynamic mode. Render again with
            # the plain gain and limiter.
            normalization = limiter_normalization(
                normalization.gain_db, "it reported dynamic mode in the second pass"
            )
            normalization = await _checked(normalization, draft, spec, source, files, ffmpeg)
            await _encode(draft, spec, source, destination, files, ffmpeg, normalization)
    for path in text_files:
        path.unlink(missing_ok=True)
    return RenderReport(normalization.mode, normalization.reason, measured)


async def _checked(
    plan: Normalization,
    draft: Draft,
    spec: ExportSpec,
    source: Path,
    files: RenderFiles,
    ffmpeg: Path,
) -> Normalization:
    """`plan` corrected by measuring, audio only, what its gain and limiter give."""
    arguments = measure_arguments(draft, spec, source, files, applying=plan.filter)
    return corrected_limiter(plan, parse_measurement(await run_ffmpeg(arguments, ffmpeg=ffmpeg)))


async def _encode(
    draft: Draft,
    spec: ExportSpec,
    source: Path,
    destination: Path,
    files: RenderFiles,
    ffmpeg: Path,
    normalization: Normalization,
) -> str:
    partial = destination.with_name(f".{destination.stem}.partial{destination.suffix}")
    graph = filter_graph(draft, spec, files, normalization=normalization.filter)
    filter_script: Path | None = None
    option = "-/filter_complex"
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
        partial,
        files,
        normalization=normalization.filter,
        filter_script=filter_script,
        filter_script_option=option,
        # loudnorm prints its report at the info level
        loglevel="info" if normalization.mode == "linear" else "error",
    )
    try:
        stderr = await run_ffmpeg(arguments, ffmpeg=ffmpeg)
        os.replace(partial, destination)
    except OSError as exc:
        raise EngineError(f"could not move the render into place: {exc}") from exc
    finally:
        partial.unlink(missing_ok=True)
    return stderr


def _chain(head: str, filters: Sequence[str], tail: str) -> str:
    return f"{head}{','.join(filters) or 'null'}{tail}"


def _uses_source_audio(draft: Draft, spec: ExportSpec) -> bool:
    return spec.format != "gif" and source_audio_of(draft) is not None


def _has_sound(draft: Draft, spec: ExportSpec) -> bool:
    return spec.format != "gif" and (
        source_audio_of(draft) is not None or music_of(draft) is not None
    )


def _music_path(files: RenderFiles) -> Path:
    if files.music is None:
        raise EngineError("the draft has music, but no music file was given to the render")
    return files.music


def _output_size(draft: Draft) -> tuple[int | None, int | None]:
    width, height = draft.metadata.get("width"), draft.metadata.get("height")
    if "source_width" not in draft.metadata:
        return None, None  # a draft of an earlier version: its width is the source's
    return (int(width) if width else None, int(height) if height else None)


def _words(paragraph: str) -> list[str]:
    """Where a line may break: words with the spaces before them, and each CJK character."""
    words: list[str] = []
    spaces = ""
    for character in paragraph:
        if character == " ":
            spaces += character
        elif spaces or not words or _is_wide(character) or _is_wide(words[-1][-1]):
            words.append(spaces + character)
            spaces = ""
        else:
            words[-1] += character
    return words


def _is_wide(character: str) -> bool:
    width = unicodedata.east_asian_width(character)
    # The CJK font draws the ambiguous punctuation (curly quotes, dashes, ellipsis) wide.
    return width in ("W", "F") or (width == "A" and "\u2000" <= character <= "\u206f")


def _advance(character: str) -> float:
    if character == " ":
        return SPACE_ADVANCE
    return WIDE_ADVANCE if _is_wide(character) else NARROW_ADVANCE


def _trim_range(cut: Cut) -> str:
    return f"start={format_number(cut.start)}:end={format_number(cut.end)}"


def _fades(cut: Cut, source_end: float | None) -> str:
    fade = min(CUT_FADE, cut.duration / 2)
    fades: list[str] = []
    if cut.start > 0:
        fades.append(f"afade=t=in:st=0:d={format_number(fade)}")
    if source_end is None or cut.end < source_end - _END_TOLERANCE:
        start = format_number(cut.duration - fade)
        fades.append(f"afade=t=out:st={start}:d={format_number(fade)}")
    return "".join(f",{item}" for item in fades)


def _even(value: float) -> int:
    return max(2, 2 * round(value / 2))


def _write_text(path: Path, text: str) -> None:
    try:
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise EngineError(f"could not write {path}: {exc}") from exc
