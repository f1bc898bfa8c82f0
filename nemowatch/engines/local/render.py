"""The local engine's executor: a Draft becomes FFmpeg arguments (pure), then the renders.

Two FFmpeg runs at once, then one that joins them (the streams copied, not re-encoded):
the video run encodes the picture while the audio run measures the loudness and
encodes the sound, so the loudness pass never holds the picture up.

The video run:

- cuts: each kept segment is trimmed from the source's video and `concat` joins them.
  A source whose container indexes its keyframes (MP4, MOV, Matroska) is opened a few
  times (at most MAX_SOURCE_INPUTS), each input seeking to a run of nearby segments
  (`-ss`, `-t`): the long stretches between runs are never decoded. Seeking is
  frame-accurate (FFmpeg decodes from the keyframe before and drops the frames before the
  point);
- speed: `setpts`, then `fps` holds the frame rate;
- shape: scale to the output size; a new aspect is met by cropping, padding (black), or
  by the whole frame between bands of a blurred copy of itself (blurred small, at an
  eighth of the size; only the bands are scaled up, and stacked with the frame: no
  full-frame blend);
- text: `drawtext` with the bundled font, each text read from a file (`textfile=`,
  `expansion=none`: nothing in it is ever parsed), inside the platforms' safe zones;
- fades: `fade` on the output timeline.

The audio run: the same segments trimmed from the source's audio (fading over 10 ms at
each cut: a hard cut in a waveform clicks) and joined; a chain of `atempo` (each within
0.5–2) for the speed, so the pitch stays; volume; music looped, trimmed to the output,
faded, at its volume, ducked under speech by a volume envelope, mixed with the source's
audio; fades; then loudness, in two passes. The first runs the audio graph through
loudnorm, which prints what it measured (`loudnorm_measure_filter`); the second applies
the measurement with `linear=true`.
loudnorm would silently switch to its dynamic mode (a compressor) when a linear gain
cannot reach the target without peaks above the limit, or the loudness range is too
wide; `normalization_plan` sees that coming from the measurement and applies a plain
gain and a true-peak-safe limiter instead (and should loudnorm still go dynamic, only the
audio is rendered again).

Outputs: MP4/MOV (H.264 High, yuv420p, AAC 48 kHz stereo, index first), WebM (VP9, Opus
48 kHz stereo), GIF (one palette per frame, at most 15 fps and 480 pixels, no sound: one
run, no audio).
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import re
import unicodedata
from collections.abc import Coroutine, Sequence
from dataclasses import dataclass, field, replace
from itertools import pairwise
from pathlib import Path
from typing import Any, Literal, TypeVar

from nemowatch import progress
from nemowatch.engines.base import Draft
from nemowatch.engines.local.analysis import format_number
from nemowatch.engines.local.ffmpeg import Capabilities, run_ffmpeg
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
TRUE_PEAK_SAMPLE_RATE = 192000  # Hz: loudnorm measures true peaks as the peaks at this rate
# The limiter of the fallback sees sample peaks, not true peaks: it stops another 0.5 dB
# lower, which covers the overshoot between samples of ordinary material.
LIMITER_CEILING = TRUE_PEAK_TARGET - 0.5
SILENT_LOUDNESS = -70.0  # LUFS: loudnorm's floor; quieter audio is left alone
LIMITER_CORRECTION = 6.0  # dB: the most a check may add to the limiter's gain

# The blurred background is computed at an eighth of the size (a box blur of a tenth of
# that size's short side, twice), then scaled up: at that size the blur costs nothing.
BLUR_DOWNSCALE = 8
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
# The video run opens the source once per run of nearby kept segments, seeking to each run:
# a seek lands on the keyframe before the point and decodes from there, so only gaps of a
# few seconds or more are worth one. Each input is a decoder of its own, holding frames
# (about 12 MB at 1080p): at most MAX_SOURCE_INPUTS of them, fewer for sources larger
# than 1080p (SOURCE_INPUT_PIXELS in all), and each decodes on one thread (a thread
# decodes 1080p several times faster than the encoder encodes; more would hold a frame
# each).
MAX_SOURCE_INPUTS = 4
SOURCE_INPUT_PIXELS = MAX_SOURCE_INPUTS * 1920 * 1088
SEEK_GAP = 2.0  # seconds
# Containers whose index lists the keyframes (MP4/MOV sample tables, Matroska cues), so a
# seek lands on one. Elsewhere (MPEG-TS, PS, AVI...) it lands anywhere, and the frames up
# to the next keyframe are lost: those sources are read from the start, by one input.
SEEKABLE_FORMATS = frozenset({"mov", "mp4", "matroska", "webm"})
# A segment ending this close to the source's end is not a cut (no fade needed there).
_END_TOLERANCE = 0.001

NormalizationMode = Literal["linear", "limiter", "none"]
_First = TypeVar("_First")
_Second = TypeVar("_Second")


@dataclass(frozen=True)
class RenderFiles:
    """The files a render reads besides the source, resolved by the executor."""

    font: Path
    text_files: tuple[Path, ...] = ()  # one per text of the draft, in order
    music: Path | None = None  # the music track (a generated loop or the user's file)
    # The text files hold a line each, every line of every text in order, each drawn on
    # its own (for an FFmpeg whose drawtext lacks `text_align`, before 6.1).
    line_by_line: bool = False


@dataclass(frozen=True)
class Reading:
    """A stretch of the source that one input of the video run reads (seeking to `start`),
    and the kept segments in it, in the order they play."""

    start: float
    end: float
    cuts: tuple[Cut, ...]


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
    source: tuple[int, int] | None = None,
) -> list[str]:
    """Chains that bring the video at `head` (a label such as "[joined]") to
    `width`x`height`, never distorting it, with the filters `before` and `after` on either
    side, to `tail` (output labels). `source` is the size of the frames at `head`, when
    known (as displayed: after any rotation)."""
    size = f"{width}:{height}"
    if aspect is not None and fit == "blur":
        if source is not None:
            return _blur_band_chains(
                width, height, source, head=head, before=before, after=after, tail=tail
            )
        return _blur_overlay_chains(width, height, head=head, before=before, after=after, tail=tail)
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


def fitted_size(width: int, height: int, source: tuple[int, int]) -> tuple[int, int]:
    """The size of a `source`-sized frame scaled to fit inside `width`x`height` without
    distortion, in even numbers (as FFmpeg's `force_original_aspect_ratio=decrease` with
    `force_divisible_by=2` makes it)."""
    source_width, source_height = source
    if source_width * height >= source_height * width:  # as wide or wider: the full width
        return width, min(height, _even(width * source_height / source_width))
    return min(width, _even(height * source_width / source_height)), height


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


def drawtext_filter(
    item: TextItem,
    *,
    text_file: Path,
    font: Path,
    width: int,
    height: int,
    line: tuple[int, int] | None = None,
) -> str:
    """One `drawtext` drawing `text_file` as `item` says, centred, inside the safe zones.

    `line` (index, count): the file holds that one line of the text, placed where it falls
    in the whole (an FFmpeg without `text_align` centres a block, not each of its lines).
    """
    size = font_size(item, height)
    top, bottom = VERTICAL_MARGINS if height > width else OTHER_MARGINS
    spacing = round(size * 0.15)
    if line is None:
        block, offset = "text_h", ""
    else:
        index, count = line
        line_height = "(max_glyph_a-max_glyph_d)"
        block = f"({count}*{line_height}+{(count - 1) * spacing})" if count > 1 else line_height
        offset = f"+{index}*({line_height}+{spacing})" if index else ""
    if item.position == "top":
        y = f"{round(top * height)}{offset}"
    elif item.position == "bottom":
        y = f"h-{block}-{round(bottom * height)}{offset}"
    else:
        y = f"(h-{block})/2{offset}"
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
        f"line_spacing={spacing}",
        *(["text_align=C"] if line is None else []),
        "x=(w-text_w)/2",
        f"y={y}",
        f"enable='between(t,{format_number(item.start)},{format_number(item.end)})'",
    ]
    return "drawtext=" + ":".join(options)


def text_file_contents(draft: Draft, *, line_by_line: bool = False) -> list[str]:
    """What each text file of the draft holds: its text, wrapped to the output's width
    (`line_by_line`: each line of each text, in order)."""
    width, height = _output_size(draft)
    if width is None or height is None:
        texts = [item.text for item in texts_of(draft)]
    else:
        texts = [
            wrap_text(item.text, TEXT_WIDTH * width, font_size(item, height))
            for item in texts_of(draft)
        ]
    if line_by_line:
        return [line for text in texts for line in text.split("\n")]
    return texts


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
    """The first pass's loudnorm: measure, print JSON.

    loudnorm measures its input alike in every mode. Without a measurement it would run
    its dynamic mode, compressing (for nothing: the output is thrown away) and counting
    its last 3 s twice; given a neutral one with `linear=true` it passes the sound through
    at 0 dB and measures each sample once, at a quarter of the cost. The sound is taken to
    192 kHz first, as the dynamic mode would: its peaks there are the true peaks.
    """
    target = format_number(LOUDNESS_TARGET)
    neutral = f"measured_I={target}:measured_TP={target}:measured_LRA=1"
    neutral += f":measured_thresh={format_number(LOUDNESS_TARGET - 10)}"
    return (
        f"aresample={TRUE_PEAK_SAMPLE_RATE},"
        f"loudnorm=I={target}:TP={format_number(TRUE_PEAK_TARGET)}"
        f":LRA={format_number(LOUDNESS_RANGE_TARGET)}:{neutral}:linear=true:print_format=json"
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
    measuring: bool = False,
) -> list[str]:
    """The audio after the cuts: speed, volume, music, fades, loudness; to `[audio]`.

    `speech_label` names the joined source audio (None: the source's audio is not used);
    `music_input` is the music's input stream, such as "1:a:0" (None: no music).
    `measuring`: `normalization` measures (a first pass), and is the graph's last filter.
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
    if measuring:
        # The measurement sees what the second pass's normalisation will: nothing after it
        # is heard (and resampling loudnorm's 192 kHz output would only cost time).
        final.append(normalization)
    else:
        if normalization:  # loudnorm's dynamic mode runs at 192 kHz
            final += [normalization, f"aresample={AUDIO_SAMPLE_RATE}"]
        # Exactly as long as the video: atempo and loudnorm may leave a few samples more or
        # less.
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


# the graphs


def source_readings(
    cuts: Sequence[Cut], *, limit: int = MAX_SOURCE_INPUTS, gap: float = SEEK_GAP
) -> list[Reading]:
    """What the video run's inputs read: the kept segments in runs, split at the widest
    gaps between them (of `gap` seconds or more), at most `limit` runs."""
    widest = sorted(
        (
            (later.start - earlier.end, index)
            for index, (earlier, later) in enumerate(pairwise(cuts), start=1)
        ),
        reverse=True,
    )
    splits = sorted(index for width, index in widest[: limit - 1] if width >= gap)
    readings = []
    for first, last in pairwise([0, *splits, len(cuts)]):
        run = tuple(cuts[first:last])
        readings.append(Reading(min(cut.start for cut in run), max(cut.end for cut in run), run))
    return readings


def readings_of(draft: Draft) -> list[Reading]:
    """The video run's inputs for `draft` (see `source_readings`): as many as the source's
    size allows, in a container that seeks to keyframes; otherwise (or where the size or
    the container is unknown) one, from the start."""
    cuts = cuts_of(draft)
    if not cuts:
        raise EngineError("the draft keeps nothing of the source: there is nothing to render")
    size = _source_size(draft)
    if size is None or not _seeks_to_keyframes(draft):
        (reading,) = source_readings(cuts, limit=1)
        return [replace(reading, start=0.0)]
    limit = SOURCE_INPUT_PIXELS // (size[0] * size[1])
    return source_readings(cuts, limit=max(1, min(MAX_SOURCE_INPUTS, limit)))


def video_cut_chains(readings: Sequence[Reading], *, out: str) -> list[str]:
    """Trim the kept segments from the video of the inputs reading them (input i reads
    `readings[i]`, in the source's own times) and join them to `[out]`."""
    count = sum(len(reading.cuts) for reading in readings)
    if count == 1:  # nothing to join
        ((cut,),) = (reading.cuts for reading in readings)
        return [f"[0:V:0]trim={_trim_range(cut)},setpts=PTS-STARTPTS[{out}]"]
    chains: list[str] = []
    joined: list[str] = []
    for index, reading in enumerate(readings):
        labels = [f"[{index}:V:0]"]
        if len(reading.cuts) > 1:
            labels = [f"[v{len(joined) + offset}]" for offset in range(len(reading.cuts))]
            chains.append(f"[{index}:V:0]split={len(labels)}" + "".join(labels))
        for label, cut in zip(labels, reading.cuts, strict=True):
            trimmed = f"[v{len(joined)}c]"
            chains.append(f"{label}trim={_trim_range(cut)},setpts=PTS-STARTPTS{trimmed}")
            joined.append(trimmed)
    chains.append(f"{''.join(joined)}concat=n={count}:v=1:a=0[{out}]")
    return chains


def audio_cut_chains(draft: Draft, *, audio: str, out: str) -> list[str]:
    """Trim the kept segments from the audio stream `audio` (an input label such as
    "0:a:0"), each faded in and out where it was cut, and join them to `[out]`."""
    cuts = cuts_of(draft)
    if not cuts:
        raise EngineError("the draft keeps nothing of the source: there is nothing to render")
    source_end = _source_end(draft)
    if len(cuts) == 1:  # nothing to join
        (cut,) = cuts
        return [
            f"[{audio}]atrim={_trim_range(cut)},asetpts=PTS-STARTPTS"
            f"{_fades(cut, source_end)}[{out}]"
        ]
    labels = range(len(cuts))
    chains = [f"[{audio}]asplit={len(cuts)}" + "".join(f"[a{index}]" for index in labels)]
    chains += [
        f"[a{index}]atrim={_trim_range(cut)},asetpts=PTS-STARTPTS"
        f"{_fades(cut, source_end)}[a{index}c]"
        for index, cut in zip(labels, cuts, strict=True)
    ]
    joined = "".join(f"[a{index}c]" for index in labels)
    chains.append(f"{joined}concat=n={len(cuts)}:v=0:a=1[{out}]")
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
        finish += _drawtext_filters(draft, files, width, height)
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
            head="[joined]", before=timing, after=finish, tail=tail, source=_source_size(draft),
        )  # fmt: skip
    if gif:
        chains += [
            "[still]palettegen=max_colors=256:stats_mode=single[palette]",
            "[frames][palette]paletteuse=new=1:dither=bayer:bayer_scale=3[video]",
        ]
    return chains


def _drawtext_filters(draft: Draft, files: RenderFiles, width: int, height: int) -> list[str]:
    """A drawtext for each text of the draft (for each line of each, `files.line_by_line`)."""
    texts = texts_of(draft)
    lines: list[tuple[TextItem, tuple[int, int] | None]] = []
    if files.line_by_line:
        for item, text in zip(texts, text_file_contents(draft), strict=True):
            count = text.count("\n") + 1
            lines += [(item, (index, count)) for index in range(count)]
    else:
        lines = [(item, None) for item in texts]
    if len(files.text_files) != len(lines):
        raise EngineError(f"{len(lines)} texts to draw, but {len(files.text_files)} files")
    return [
        drawtext_filter(
            item, text_file=text_file, font=files.font, width=width, height=height, line=line
        )
        for (item, line), text_file in zip(lines, files.text_files, strict=True)
    ]


def video_graph(draft: Draft, spec: ExportSpec, files: RenderFiles) -> str:
    """The video run's filter graph: outputs `[video]`. Input i reads `readings_of(draft)[i]`."""
    chains = video_cut_chains(readings_of(draft), out="joined")
    return ";".join([*chains, *video_chains(draft, spec, files)])


def audio_graph(
    draft: Draft, spec: ExportSpec, *, normalization: str = "", measuring: bool = False
) -> str:
    """The audio run's filter graph: outputs `[audio]` (see `audio_chains`).

    Inputs: 0 is the source (when its sound is used), then the music (when there is music).
    """
    speech = _uses_source_audio(draft, spec)
    chains = audio_cut_chains(draft, audio="0:a:0", out="cut") if speech else []
    music_input = f"{1 if speech else 0}:a:0" if music_of(draft) is not None else None
    chains += audio_chains(
        draft,
        music_input=music_input,
        speech_label="cut" if speech else None,
        normalization=normalization,
        measuring=measuring,
    )
    return ";".join(chains)


def measure_graph(draft: Draft, spec: ExportSpec, *, applying: str = "") -> str:
    """The first pass's graph: the audio, ending in loudnorm's measurement (after the
    filters `applying`, when checking what a normalisation gives)."""
    measurement = ",".join(filter(None, [applying, loudnorm_measure_filter()]))
    return audio_graph(draft, spec, normalization=measurement, measuring=True)


# the arguments


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
        arguments = ["-c:a", "aac", "-b:a", AAC_BITRATE]
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
    `part`: the sound is joined to `output` later (no fast start). With `filter_script`,
    the filter graph is read from that file (written by the caller) through
    `filter_script_option` instead of being passed inline.
    """
    arguments = _head("error")
    source_end = _source_end(draft)
    readings = readings_of(draft)
    if any(reading.start > 0 for reading in readings):
        arguments += ["-copyts", "-start_at_zero"]
    for reading in readings:
        if len(readings) > 1:
            arguments += ["-threads", "1"]
        if reading.start > 0:
            arguments += ["-ss", format_number(reading.start)]
        if source_end is None or reading.end < source_end - _END_TOLERANCE:
            arguments += ["-t", format_number(reading.end - reading.start)]
        arguments += ["-an", "-sn", "-dn", "-i", str(source)]
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
    filter_script: Path | None = None,
    filter_script_option: str = "-/filter_complex",
    loglevel: str = "error",
) -> list[str]:
    """The audio run: `draft`'s sound, normalised by the filters `normalization`, to
    `output` (in the export's container, to be joined with the video run's)."""
    arguments = [*_head(loglevel), *_audio_inputs(draft, spec, source, files)]
    graph = audio_graph(draft, spec, normalization=normalization)
    arguments += _graph_arguments(graph, filter_script, filter_script_option)
    arguments += ["-map", "[audio]", "-map_chapters", "-1", *audio_encoder_arguments(spec)]
    return [*arguments, *container_arguments(spec, fast_start=False), str(output)]


def measure_arguments(
    draft: Draft,
    spec: ExportSpec,
    source: Path,
    files: RenderFiles,
    *,
    applying: str = "",
    filter_script: Path | None = None,
    filter_script_option: str = "-/filter_complex",
) -> list[str]:
    """The first pass: the audio graph alone, its loudness printed (no video decoded).

    With `applying`, the loudness after those filters (a check of a normalisation)."""
    arguments = [*_head("info"), *_audio_inputs(draft, spec, source, files)]
    graph = measure_graph(draft, spec, applying=applying)
    arguments += _graph_arguments(graph, filter_script, filter_script_option)
    return [*arguments, "-map", "[audio]", "-f", "null", "-"]


def mux_arguments(spec: ExportSpec, video: Path, audio: Path, output: Path) -> list[str]:
    """Join the video run's `video` and the audio run's `audio` into `output`, the streams
    copied as they are."""
    arguments = [*_head("error"), "-i", str(video), "-i", str(audio)]
    arguments += ["-map", "0:v:0", "-map", "1:a:0", "-c", "copy", "-map_chapters", "-1"]
    return [*arguments, *container_arguments(spec), str(output)]


# the executor


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

    The video and the audio are rendered at once, each to a part beside `destination`,
    then joined. Text files and long filter graphs are written beside it too. The
    arguments are those `ffmpeg` understands (older forms where it lacks newer options).
    """
    if music_of(draft) is not None and music is None and _has_sound(draft, spec):
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
    video_script = destination.with_name(f"{destination.stem}.filtergraph.txt")
    audio_script = destination.with_name(f"{destination.stem}.audio-filtergraph.txt")
    stages = _Stages(draft.duration)
    try:
        for path, text in zip(text_files, contents, strict=True):
            _write_text(path, text)
        if _has_sound(draft, spec):
            _, (normalization, measured) = await _together(
                _encode_video(
                    draft, spec, source, video_part, files, ffmpeg, video_script, stages, part=True
                ),
                _encode_audio(draft, spec, source, audio_part, files, ffmpeg, audio_script, stages),
            )
            progress.report("joining picture and sound")
            await run_ffmpeg(
                mux_arguments(spec, video_part, audio_part, partial), ffmpeg=ffmpeg.path
            )
            report = RenderReport(normalization.mode, normalization.reason, measured)
        else:
            await _encode_video(draft, spec, source, partial, files, ffmpeg, video_script, stages)
            report = RenderReport("none", "not asked for")
        try:
            os.replace(partial, destination)
        except OSError as exc:
            raise EngineError(f"could not move the render into place: {exc}") from exc
    finally:
        for path in (partial, video_part, audio_part, *text_files):
            path.unlink(missing_ok=True)
    return report


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
    """The audio run, to `output`: measure, decide, encode. Returns the normalisation
    applied and what the first pass measured."""

    async def measure(applying: str = "") -> LoudnessMeasurement | None:
        stages.sound("measuring loudness")
        graph = measure_graph(draft, spec, applying=applying)
        script_path, option = _script_for(graph, script, ffmpeg)
        arguments = measure_arguments(
            draft,
            spec,
            source,
            files,
            applying=applying,
            filter_script=script_path,
            filter_script_option=option,
        )
        return parse_measurement(await run_ffmpeg(arguments, ffmpeg=ffmpeg.path))

    async def checked(plan: Normalization) -> Normalization:
        # what the gain and limiter give, measured: the limiter may have taken loudness
        return corrected_limiter(plan, await measure(plan.filter))

    async def encode(normalization: Normalization) -> str:
        stages.sound("encoding sound")
        graph = audio_graph(draft, spec, normalization=normalization.filter)
        script_path, option = _script_for(graph, script, ffmpeg)
        arguments = audio_arguments(
            draft,
            spec,
            source,
            output,
            files,
            normalization=normalization.filter,
            filter_script=script_path,
            filter_script_option=option,
            # loudnorm prints its report at the info level
            loglevel="info" if normalization.mode == "linear" else "error",
        )
        return await run_ffmpeg(arguments, ffmpeg=ffmpeg.path)

    normalization = Normalization("none", "", "not asked for")
    measured: dict[str, float] = {}
    if draft.metadata.get("normalize"):
        measurement = await measure()
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
            normalization = await checked(normalization)
    stderr = await encode(normalization)
    if normalization.mode == "linear":
        result = parse_loudnorm(stderr)
        if result is not None and result.get("normalization_type") != "linear":
            # The prediction missed: never ship loudnorm's dynamic mode. Encode the sound
            # again with the plain gain and limiter.
            normalization = await checked(
                limiter_normalization(
                    normalization.gain_db, "it reported dynamic mode in the second pass"
                )
            )
            await encode(normalization)
    stages.sound_done()
    return normalization, measured


class _Stages:
    """What a render reports while its two runs go on at once: the picture's progress
    ("rendering", N %) while it runs, then what the sound is still doing."""

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


async def _together(
    first: Coroutine[Any, Any, _First], second: Coroutine[Any, Any, _Second]
) -> tuple[_First, _Second]:
    """Run both at once. The first failure is raised once the other has stopped (a run
    cancelled kills its FFmpeg)."""
    tasks = (asyncio.ensure_future(first), asyncio.ensure_future(second))
    try:
        return await asyncio.gather(tasks[0], tasks[1])
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.wait(tasks)


def _script_for(graph: str, path: Path, ffmpeg: Capabilities) -> tuple[Path | None, str]:
    """Where a filter graph too long for the command line goes (written to `path`; None:
    inline), and the option that reads it."""
    if len(graph) <= FILTER_SCRIPT_THRESHOLD:
        return None, "-/filter_complex"
    _write_text(path, graph)
    return path, "-/filter_complex" if ffmpeg.option_files else "-filter_complex_script"


def _graph_arguments(graph: str, script: Path | None, script_option: str) -> list[str]:
    return [script_option, str(script)] if script is not None else ["-filter_complex", graph]


def _head(loglevel: str) -> list[str]:
    return ["-hide_banner", "-nostdin", "-nostats", "-loglevel", loglevel, "-y"]


def _audio_inputs(draft: Draft, spec: ExportSpec, source: Path, files: RenderFiles) -> list[str]:
    """The audio run's inputs: the source's sound (no video decoded), the music looped."""
    arguments: list[str] = []
    if _uses_source_audio(draft, spec):
        arguments += ["-vn", "-sn", "-dn", "-i", str(source)]
    if music_of(draft) is not None:
        arguments += ["-stream_loop", "-1", "-vn", "-i", str(_music_path(files))]
    return arguments


def _blur_band_chains(
    width: int,
    height: int,
    source: tuple[int, int],
    *,
    head: str,
    before: Sequence[str],
    after: Sequence[str],
    tail: str,
) -> list[str]:
    """The whole frame between two bands (above and below it, or left and right) of a
    blurred copy of itself, stacked: only the bands are scaled up, and nothing is blended.

    The copy is the middle of the frame, cut to the output's shape, blurred small."""
    front_width, front_height = fitted_size(width, height, source)
    across = front_width == width  # the frame spans the width: bands above and below
    room = (height - front_height) if across else (width - front_width)
    if room <= 0:  # the same shape: nothing to fill
        return [_chain(head, [*before, f"scale={width}:{height}", "setsar=1", *after], tail)]
    small_width, small_height = _even(width / BLUR_DOWNSCALE), _even(height / BLUR_DOWNSCALE)
    radius = max(2, round(min(width, height) / BLUR_DOWNSCALE / 10))
    if across:  # the middle of the frame, as wide as the output's shape allows
        cover = (min(front_width, _even(front_height * width / height)), front_height)
    else:
        cover = (front_width, min(front_height, _even(front_width * height / width)))
    # even sizes: 4:2:0 video has half as many chroma rows and columns
    first = 2 * (room // 4)
    names = ("top", "bottom") if across else ("left", "right")
    bands = [
        (index, names[index], band) for index, band in enumerate((first, room - first)) if band
    ]
    blur = [
        f"crop={cover[0]}:{cover[1]}",
        f"scale={small_width}:{small_height}:flags=area",
        f"boxblur={radius}:2",
    ]
    if len(bands) > 1:
        blur.append(f"split={len(bands)}")
    chains = [
        _chain(head, [*before, f"scale={front_width}:{front_height}", "split=2"], "[front][back]"),
        _chain("[back]", blur, "".join(f"[blurred{index}]" for index, _, _ in bands)),
    ]
    small_side, side = (small_height, height) if across else (small_width, width)
    for index, name, band in bands:
        small_band = min(small_side, max(2, _even(band * small_side / side)))
        offset = 0 if index == 0 else small_side - small_band
        if across:
            band_filters = [
                f"crop={small_width}:{small_band}:0:{offset}",
                f"scale={width}:{band}:flags=fast_bilinear",
            ]
        else:
            band_filters = [
                f"crop={small_band}:{small_height}:{offset}:0",
                f"scale={band}:{height}:flags=fast_bilinear",
            ]
        chains.append(_chain(f"[blurred{index}]", band_filters, f"[{name}]"))
    order = [f"[{name}]" for index, name, _ in bands if index == 0]
    order += ["[front]", *(f"[{name}]" for index, name, _ in bands if index == 1)]
    stack = f"{'vstack' if across else 'hstack'}=inputs={len(order)}"
    chains.append(_chain("".join(order), [stack, "setsar=1", *after], tail))
    return chains


def _blur_overlay_chains(
    width: int,
    height: int,
    *,
    head: str,
    before: Sequence[str],
    after: Sequence[str],
    tail: str,
) -> list[str]:
    """The whole frame over a blurred copy of itself filling the frame, for frames of an
    unknown size (the bands need it)."""
    size = f"{width}:{height}"
    small = f"{_even(width / BLUR_DOWNSCALE)}:{_even(height / BLUR_DOWNSCALE)}"
    radius = max(2, round(min(width, height) / BLUR_DOWNSCALE / 10))
    return [
        _chain(head, [*before, "split=2"], "[fg][bg]"),
        _chain(
            "[bg]",
            [
                f"scale={small}:force_original_aspect_ratio=increase:flags=area",
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


def _seeks_to_keyframes(draft: Draft) -> bool:
    names = str(draft.metadata.get("source_format") or "").split(",")
    return not SEEKABLE_FORMATS.isdisjoint(names)


def _source_size(draft: Draft) -> tuple[int, int] | None:
    width, height = draft.metadata.get("source_width"), draft.metadata.get("source_height")
    return (int(width), int(height)) if width and height else None


def _source_end(draft: Draft) -> float | None:
    source_duration_ms = draft.metadata.get("source_duration_ms")
    return source_duration_ms / 1000 if source_duration_ms is not None else None


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
