"""The picture and sound effects of an edit: denoise, colour, watermark, reverse, loop and
the `enhance` preset. What the draft records of them (`Effects`, the draft's `m.effects`,
present only when there are some), and the filters that play them. Pure.

Every filter here exists in Debian's FFmpeg 5.1 (and is in the capability probe's table):

- denoise: `afftdn` on the source's sound, `nr` dB of reduction, a noise floor of
  NOISE_FLOOR_DB that it tracks (`tn`), so hiss up to about -30 dBFS is taken down;
- colour: `eq` (brightness, contrast, saturation) and `colortemperature` for warmth
  (6500 K is neutral; warmth +1 is 3500 K, -1 is 9500 K);
- enhance (see `rules.ENHANCE_DESCRIPTION`): `eq` contrast and saturation, `hqdn3d` at
  half its default strength, `afftdn` 6 dB, loudness normalisation;
- watermark: the image, scaled to its share of the frame's width, made translucent
  (`colorchannelmixer` on its alpha) and laid over a corner (`overlay`), MARGIN of the
  frame's width from the edges;
- reverse: `reverse` and `areverse`; loop: `loop` and `aloop`, on the edit's whole pass.

Reverse and loop hold a whole pass of the edit in memory, as output-sized frames: a
draft whose pass would hold more than MAX_HELD_BYTES (or more than MAX_LOOP_FRAMES
frames, the `loop` filter's limit) is refused when it is planned (`check_held_frames`),
with what to change. At 1080p and 30 fps that is about 23 s; at 720p, about 50 s.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

from nemowatch.engines.base import Draft, JSONObject
from nemowatch.engines.local.analysis import format_number
from nemowatch.errors import MediaError
from nemowatch.rules import (
    ENHANCE_CONTRAST,
    ENHANCE_DENOISE,
    ENHANCE_SATURATION,
    EditSpec,
)

NOISE_FLOOR_DB = -30.0
NEUTRAL_KELVIN = 6500
KELVIN_PER_WARMTH = 3000
LIGHT_VIDEO_DENOISE = "hqdn3d=2:1.5:3:2.25"  # half of hqdn3d's defaults (4:3:6:4.5)
MARGIN = 0.03  # of the frame's width, between a watermark and the edges
MAX_HELD_BYTES = 2 * 1024**3
MAX_LOOP_FRAMES = 32767  # the `loop` filter holds at most this many
_BYTES_PER_PIXEL = 1.5  # yuv420p


@dataclass(frozen=True)
class WatermarkItem:
    """The watermark as the render lays it: `path` is resolved (absolute)."""

    path: str
    corner: str
    opacity: float
    size: float  # width, as a fraction of the frame's


@dataclass(frozen=True)
class Effects:
    """The effects of a draft, as the render applies them."""

    denoise_db: float | None = None
    video_denoise: bool = False
    brightness: float | None = None
    contrast: float | None = None
    saturation: float | None = None
    temperature: int | None = None  # kelvin
    watermark: WatermarkItem | None = None
    reverse: bool = False
    loop: int = 1  # times the pass is played

    @classmethod
    def of_edit(cls, edit: EditSpec, watermark: str | None = None) -> Effects:
        """The effects `edit` asks for, the `enhance` preset filled in where the edit sets
        nothing of its own; `watermark` is the image's resolved path."""
        color = edit.color
        contrast = color.contrast if color is not None else None
        saturation = color.saturation if color is not None else None
        if edit.enhance and color is None:
            contrast, saturation = ENHANCE_CONTRAST, ENHANCE_SATURATION
        denoise = edit.denoise
        if edit.enhance and denoise is None:
            denoise = ENHANCE_DENOISE
        warmth = color.warmth if color is not None else None
        mark = edit.watermark
        return cls(
            denoise_db=denoise,
            video_denoise=edit.enhance,
            brightness=color.brightness if color is not None else None,
            contrast=contrast,
            saturation=saturation,
            temperature=(
                round(NEUTRAL_KELVIN - KELVIN_PER_WARMTH * warmth) if warmth is not None else None
            ),
            watermark=(
                WatermarkItem(watermark or mark.file, mark.corner, mark.opacity, mark.size)
                if mark is not None
                else None
            ),
            reverse=edit.reverse,
            loop=edit.loop or 1,
        )

    @classmethod
    def of(cls, draft: Draft) -> Effects:
        """The draft's `m.effects` (none for a draft without the key)."""
        data = draft.metadata.get("effects")
        if not isinstance(data, dict):
            return cls()
        mark = data.get("watermark")
        number = {
            name: float(value) if isinstance((value := data.get(name)), int | float) else None
            for name in ("denoise_db", "brightness", "contrast", "saturation")
        }
        temperature, loop = data.get("temperature"), data.get("loop")
        return cls(
            **number,
            video_denoise=bool(data.get("video_denoise", False)),
            temperature=int(temperature) if isinstance(temperature, int | float) else None,
            watermark=(
                WatermarkItem(
                    str(mark["path"]),
                    str(mark.get("corner", "bottom-right")),
                    float(_number(mark.get("opacity"), 1.0)),
                    float(_number(mark.get("size"), 0.15)),
                )
                if isinstance(mark, dict) and "path" in mark
                else None
            ),
            reverse=bool(data.get("reverse", False)),
            loop=int(loop) if isinstance(loop, int | float) and loop >= 1 else 1,
        )

    @property
    def any(self) -> bool:
        return self != Effects()

    def to_json(self) -> JSONObject:
        data = asdict(self)
        data["watermark"] = asdict(self.watermark) if self.watermark is not None else None
        return data

    def describe(self) -> list[str]:
        """Each effect in words, for `explain`."""
        parts = []
        colour = [
            f"{name} {format_number(value)}"
            for name, value in (
                ("brightness", self.brightness),
                ("contrast", self.contrast),
                ("saturation", self.saturation),
            )
            if value is not None
        ]
        if self.temperature is not None:
            colour.append(f"colour temperature {self.temperature} K")
        parts += colour
        if self.video_denoise:
            parts.append("light video denoise")
        if self.denoise_db is not None:
            parts.append(f"hiss reduced by {format_number(self.denoise_db)} dB")
        if self.watermark is not None:
            mark = self.watermark
            parts.append(
                f"watermark {mark.path} {mark.corner}, {mark.size:.0%} wide, {mark.opacity:.0%}"
                " opaque"
            )
        if self.reverse:
            parts.append("played backwards")
        if self.loop > 1:
            parts.append(f"played {self.loop} times")
        return parts


def picture_filters(effects: Effects) -> list[str]:
    """The effects on output-sized frames, before texts and fades (the watermark apart)."""
    filters = []
    if effects.video_denoise:
        filters.append(LIGHT_VIDEO_DENOISE)
    levels = [
        f"{name}={format_number(value)}"
        for name, value in (
            ("brightness", effects.brightness),
            ("contrast", effects.contrast),
            ("saturation", effects.saturation),
        )
        if value is not None
    ]
    if levels:
        filters.append("eq=" + ":".join(levels))
    if effects.temperature is not None:
        filters.append(f"colortemperature=temperature={effects.temperature}")
    if effects.reverse:
        filters.append("reverse")
    if effects.loop > 1:
        filters.append(f"loop=loop={effects.loop - 1}:size={MAX_LOOP_FRAMES}")
    return filters


def sound_filters(effects: Effects) -> list[str]:
    """The effects on the source's sound (48 kHz stereo, after speed and volume)."""
    filters = []
    if effects.denoise_db is not None:
        filters.append(
            f"afftdn=nr={format_number(effects.denoise_db)}:nf={format_number(NOISE_FLOOR_DB)}:tn=1"
        )
    if effects.reverse:
        filters.append("areverse")
    if effects.loop > 1:
        filters.append(f"aloop=loop={effects.loop - 1}:size={2**31 - 1}")
    return filters


def watermark_chains(
    mark: WatermarkItem,
    *,
    image: str,
    width: int,
    head: str,
    after: Sequence[str],
    tail: str,
) -> list[str]:
    """The image at input `image` (e.g. "2:v:0") laid over the frames at `head`
    (`width` wide), then the filters `after`, to `tail`."""
    mark_width = max(2, 2 * round(width * mark.size / 2))
    margin = round(width * MARGIN)
    x = f"{margin}" if mark.corner.endswith("left") else f"W-w-{margin}"
    y = f"{margin}" if mark.corner.startswith("top") else f"H-h-{margin}"
    return [
        f"[{image}]format=rgba,scale=w={mark_width}:h=-2,"
        f"colorchannelmixer=aa={format_number(mark.opacity)}[mark]",
        f"{head}[mark]overlay=x={x}:y={y}{''.join(',' + each for each in after)}{tail}",
    ]


def check_held_frames(
    effects: Effects, *, pass_duration: float, width: int | None, height: int | None,
    fps: float | None, source: str,
) -> None:  # fmt: skip
    """Refuse a reverse or loop whose pass would not fit in memory (see the module's
    docstring)."""
    if not (effects.reverse or effects.loop > 1):
        return
    frames = math.ceil(pass_duration * (fps or 30.0))
    held = frames * (width or 1920) * (height or 1080) * _BYTES_PER_PIXEL
    held *= (1 if effects.reverse else 0) + (1 if effects.loop > 1 else 0)
    what = " and ".join(
        name for name, on in (("reverse", effects.reverse), ("loop", effects.loop > 1)) if on
    )
    if held > MAX_HELD_BYTES or (effects.loop > 1 and frames > MAX_LOOP_FRAMES):
        limit = f"at most {MAX_HELD_BYTES / 1024**3:g} GiB"
        if effects.loop > 1:
            limit += f" and {MAX_LOOP_FRAMES} frames"
        raise MediaError(
            f"{what} of {source} would hold {pass_duration:.1f} s of frames in memory"
            f" ({frames} frames, {held / 1024**3:.1f} GiB; {limit})",
            hint="trim the edit shorter (or set max_duration), or export at a lower"
            " resolution: 720p at 30 fps holds about 50 s",
        )


def pass_windows(
    windows: Sequence[tuple[float, float]], pass_duration: float, effects: Effects
) -> tuple[tuple[float, float], ...]:
    """Output windows of one pass of the edit placed where the output plays them: mirrored
    when it plays backwards, repeated for each loop."""
    placed = [
        (pass_duration - end, pass_duration - start) if effects.reverse else (start, end)
        for start, end in windows
    ]
    placed.sort()
    return tuple(
        (round(start + index * pass_duration, 3), round(end + index * pass_duration, 3))
        for index in range(effects.loop)
        for start, end in placed
    )


def _number(value: object, default: float) -> float:
    return float(value) if isinstance(value, int | float) else default
