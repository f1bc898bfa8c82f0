"""The video run's filter graph (pure):

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
- effects (colour, enhance, reverse, loop; see `effects`) on the output-sized frames,
  then the watermark laid over them (the input after the source's);
- text: see `text`;
- fades: `fade` on the output timeline.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from itertools import pairwise

from nemowatch.engines.base import Draft
from nemowatch.engines.local.analysis import format_number
from nemowatch.engines.local.effects import Effects, picture_filters, watermark_chains
from nemowatch.engines.local.graph import RenderFiles, chain, even, fade_filters, trim_range
from nemowatch.engines.local.text import drawtext_filters
from nemowatch.engines.local.timeline import (
    Cut,
    TimelineFacts,
    cuts_of,
    fps_value,
    texts_of,
)
from nemowatch.errors import EngineError
from nemowatch.rules import ExportSpec

# The blurred background is computed at an eighth of the size (a box blur of a tenth of
# that size's short side, twice), then scaled up: at that size the blur costs nothing.
BLUR_DOWNSCALE = 8


# The video run opens the source once per run of nearby kept segments, seeking to each run:
# a seek lands on the keyframe before the point and decodes from there, so only gaps of a
# few seconds or more are worth one. Each input is a decoder of its own, holding frames
# (about 13 MB at 1080p, kept to the end of the run): at most MAX_SOURCE_INPUTS of them,
# fewer for sources larger than 1080p (SOURCE_INPUT_PIXELS in all), and each decodes on
# one thread (a thread decodes 1080p several times faster than the encoder encodes; more
# would hold a frame each). Three, not four: on the reel benchmark (nine kept segments of
# a 2-minute 1080p source, 2026-12-06) four peak at 438 MB for 1.15x the floor's CPU, three
# at 426 MB for 1.165x, two at 414 MB for 1.18-1.26x (the narrower gaps decoded through):
# issue 15 asks for at most 450 MB and 1.20x, and two left the CPU no margin. Most of the
# video run's 350 MB is x264's (its lookahead and frame threads at 1080x1920: 230 MB),
# which the output's size and quality settle.
MAX_SOURCE_INPUTS = 3


SOURCE_INPUT_PIXELS = MAX_SOURCE_INPUTS * 1920 * 1088


SEEK_GAP = 2.0  # seconds


# Containers whose index lists the keyframes (MP4/MOV sample tables, Matroska cues), so a
# seek lands on one. Elsewhere (MPEG-TS, PS, AVI...) it lands anywhere, and the frames up
# to the next keyframe are lost: those sources are read from the start, by one input.
SEEKABLE_FORMATS = frozenset({"mov", "mp4", "matroska", "webm"})


@dataclass(frozen=True)
class Reading:
    """A stretch of the source that one input of the video run reads (seeking to `start`),
    and the kept segments in it, in the order they play."""

    start: float
    end: float
    cuts: tuple[Cut, ...]


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
    return [chain(head, [*before, *shape, "setsar=1", *after], tail)]


def fitted_size(width: int, height: int, source: tuple[int, int]) -> tuple[int, int]:
    """The size of a `source`-sized frame scaled to fit inside `width`x`height` without
    distortion, in even numbers (as FFmpeg's `force_original_aspect_ratio=decrease` with
    `force_divisible_by=2` makes it)."""
    source_width, source_height = source
    if source_width * height >= source_height * width:  # as wide or wider: the full width
        return width, min(height, even(width * source_height / source_width))
    return min(width, even(height * source_width / source_height)), height


def scale_filter(spec: ExportSpec) -> str:
    """Scale to the target short side without distortion, to even dimensions (H.264 4:2:0).

    For drafts that do not know the source's size: expressions rather than numbers, since
    FFmpeg applies a phone's rotation before this filter and only it knows the short side.
    """
    short_side = spec.short_side
    if short_side is None:
        return "scale=trunc(iw/2)*2:trunc(ih/2)*2"
    return f"scale=w='if(lt(iw,ih),{short_side},-2)':h='if(lt(iw,ih),-2,{short_side})'"


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
    facts = TimelineFacts.of(draft)
    size = facts.source_size
    if size is None or not _seeks_to_keyframes(facts):
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
        return [f"[0:V:0]trim={trim_range(cut)},setpts=PTS-STARTPTS[{out}]"]
    chains: list[str] = []
    joined: list[str] = []
    for index, reading in enumerate(readings):
        labels = [f"[{index}:V:0]"]
        if len(reading.cuts) > 1:
            labels = [f"[v{len(joined) + offset}]" for offset in range(len(reading.cuts))]
            chains.append(f"[{index}:V:0]split={len(labels)}" + "".join(labels))
        for label, cut in zip(labels, reading.cuts, strict=True):
            trimmed = f"[v{len(joined)}c]"
            chains.append(f"{label}trim={trim_range(cut)},setpts=PTS-STARTPTS{trimmed}")
            joined.append(trimmed)
    chains.append(f"{''.join(joined)}concat=n={count}:v=1:a=0[{out}]")
    return chains


def video_chains(draft: Draft, spec: ExportSpec, files: RenderFiles) -> list[str]:
    """From the joined video `[joined]` to the output's `[video]`."""
    facts = TimelineFacts.of(draft)
    speed, fps, source_fps = facts.speed, facts.fps, facts.source_fps
    timing: list[str] = []
    if not math.isclose(speed, 1.0):
        timing.append(f"setpts=PTS/{format_number(speed)}")
    # A new rate, or a speed change (which multiplies the rate): frames are dropped or
    # repeated to hold the output's rate.
    if fps and (not math.isclose(speed, 1.0) or source_fps is None or abs(fps - source_fps) > 0.01):
        timing.append(f"fps={fps_value(fps)}")
    width, height = facts.output_size
    effects = Effects.of(draft)
    finish: list[str] = []
    texts = texts_of(draft)
    if texts:
        if width is None or height is None:
            raise EngineError("the draft has texts but no output size to place them in")
        finish += drawtext_filters(draft, files, width, height)
    finish += fade_filters("fade", draft)
    gif = spec.format == "gif"
    # A GIF gets a palette of its own for each frame: no frame waits for the whole clip.
    finish.append("split" if gif else "format=yuv420p")
    tail = "[still][frames]" if gif else "[video]"
    # effects on output-sized frames (fewer pixels to hold for reverse and loop), then the
    # watermark over them, then texts and fades on the output's timeline
    mark = effects.watermark
    after, framed = [*picture_filters(effects), *finish], tail
    if mark is not None:
        if width is None:
            raise EngineError("the draft has a watermark but no output size to place it in")
        after, framed = picture_filters(effects), "[framed]"
    if width is None or height is None:
        chains = [chain("[joined]", [*timing, scale_filter(spec), "setsar=1", *after], framed)]
    else:
        chains = shape_chains(
            width, height, facts.fit, facts.aspect,
            head="[joined]", before=timing, after=after, tail=framed, source=facts.source_size,
        )  # fmt: skip
    if mark is not None and width is not None:
        image = f"{len(readings_of(draft))}:v:0"  # the input after the source's readings
        chains += watermark_chains(
            mark, image=image, width=width, head="[framed]", after=finish, tail=tail
        )
    if gif:
        chains += [
            "[still]palettegen=max_colors=256:stats_mode=single[palette]",
            "[frames][palette]paletteuse=new=1:dither=bayer:bayer_scale=3[video]",
        ]
    return chains


def video_graph(draft: Draft, spec: ExportSpec, files: RenderFiles) -> str:
    """The video run's filter graph: outputs `[video]`. Input i reads `readings_of(draft)[i]`."""
    chains = video_cut_chains(readings_of(draft), out="joined")
    return ";".join([*chains, *video_chains(draft, spec, files)])


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
        return [chain(head, [*before, f"scale={width}:{height}", "setsar=1", *after], tail)]
    small_width, small_height = even(width / BLUR_DOWNSCALE), even(height / BLUR_DOWNSCALE)
    radius = max(2, round(min(width, height) / BLUR_DOWNSCALE / 10))
    if across:  # the middle of the frame, as wide as the output's shape allows
        cover = (min(front_width, even(front_height * width / height)), front_height)
    else:
        cover = (front_width, min(front_height, even(front_width * height / width)))
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
        chain(head, [*before, f"scale={front_width}:{front_height}", "split=2"], "[front][back]"),
        chain("[back]", blur, "".join(f"[blurred{index}]" for index, _, _ in bands)),
    ]
    small_side, side = (small_height, height) if across else (small_width, width)
    for index, name, band in bands:
        small_band = min(small_side, max(2, even(band * small_side / side)))
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
        chains.append(chain(f"[blurred{index}]", band_filters, f"[{name}]"))
    order = [f"[{name}]" for index, name, _ in bands if index == 0]
    order += ["[front]", *(f"[{name}]" for index, name, _ in bands if index == 1)]
    stack = f"{'vstack' if across else 'hstack'}=inputs={len(order)}"
    chains.append(chain("".join(order), [stack, "setsar=1", *after], tail))
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
    small = f"{even(width / BLUR_DOWNSCALE)}:{even(height / BLUR_DOWNSCALE)}"
    radius = max(2, round(min(width, height) / BLUR_DOWNSCALE / 10))
    return [
        chain(head, [*before, "split=2"], "[fg][bg]"),
        chain(
            "[bg]",
            [
                f"scale={small}:force_original_aspect_ratio=increase:flags=area",
                f"crop={small}",
                f"boxblur={radius}:2",
                f"scale={size}:flags=fast_bilinear",
            ],
            "[blurred]",
        ),
        chain(
            "[fg]",
            [f"scale={size}:force_original_aspect_ratio=decrease:force_divisible_by=2"],
            "[front]",
        ),
        chain("[blurred][front]", ["overlay=(W-w)/2:(H-h)/2", "setsar=1", *after], tail),
    ]


def _seeks_to_keyframes(facts: TimelineFacts) -> bool:
    names = (facts.source_format or "").split(",")
    return not SEEKABLE_FORMATS.isdisjoint(names)
