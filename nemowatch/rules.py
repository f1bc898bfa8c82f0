"""The edit vocabulary (EditSpec, ExportSpec) and matching a path to a rule.

Everything here is pure: values and decisions, no filesystem access.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator


class Frozen(BaseModel):
    """Base for config values: unknown keys are errors, instances are immutable."""

    # defer_build: a model's validator is built when first used, not at import. Loading a
    # config builds the whole tree once, instead of each model its own at import (some
    # never used by a given command): about 50 ms of CPU less at every start.
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)


class SilenceCut(Frozen):
    """Cut out silent stretches. Defaults follow auto-editor's proven ones."""

    threshold_db: float = Field(default=-28.0, le=0.0, ge=-90.0)  # audio below this is silence
    margin: float = Field(default=0.2, ge=0.0, le=5.0)  # seconds of silence kept by each cut
    min_cut: float = Field(default=0.2, ge=0.0, le=10.0)  # shorter silences are left in


class Trim(Frozen):
    """Keep only part of the source, in source seconds (before any other cut).

    `cut_end` and `last` count from the source's end, so they are resolved against its
    duration when the edit is planned: `cut_end: 10` removes the final 10 s, `last: 30`
    keeps only the final 30 s.
    """

    start: float = Field(default=0.0, ge=0.0)
    end: float | None = Field(default=None, gt=0.0)  # None: to the end of the source
    cut_end: float | None = Field(default=None, gt=0.0)  # seconds removed from the end
    last: float | None = Field(default=None, gt=0.0)  # keep only this many final seconds

    @model_validator(mode="after")
    def _one_end(self) -> Trim:
        if self.end is not None and self.cut_end is not None:
            raise ValueError("set either `end` or `cut_end`, not both")
        if self.last is not None and (
            self.start or self.end is not None or self.cut_end is not None
        ):
            raise ValueError("`last` keeps the final seconds by itself: leave out the others")
        return self


class TextOverlay(Frozen):
    """A title or caption drawn over the video."""

    text: str = Field(min_length=1, max_length=500)
    start: float = Field(default=0.0, ge=0.0)  # seconds into the output
    duration: float = Field(default=3.0, gt=0.0, le=3600.0)
    position: Literal["top", "center", "bottom"] = "center"
    size: float = Field(default=0.07, gt=0.0, le=0.5)  # text height, fraction of frame height


class Captions(Frozen):
    """Speech turned into text, offline (faster-whisper): burned into the picture, or a
    soft subtitle track plus an .srt beside the output. Timed against the output, after
    cuts and speed."""

    burn: bool = True  # False: a subtitle track (mov_text in MP4/MOV) and an .srt file
    language: str | None = Field(default=None, pattern=r"^[a-z]{2,3}$")  # None: detected
    position: Literal["bottom", "top", "center"] = "bottom"
    size: float = Field(default=0.045, gt=0.0, le=0.2)  # text height, fraction of frame height
    max_chars: int = Field(default=42, ge=10, le=42)  # a line, at most
    lines: int = Field(default=2, ge=1, le=2)  # a caption, at most


FILLERS = ("um", "umm", "uh", "uhm", "er", "erm", "ah", "hmm", "mm", "嗯", "呃", "那个")


class FillerCut(Frozen):
    """Cut out filler words, found by speech-to-text with word timestamps."""

    words: tuple[str, ...] = Field(default=FILLERS, min_length=1)


# ---- picture and sound effects (denoise, color, watermark, reverse, loop, enhance) --------

DENOISE_STRENGTHS = {"light": 6.0, "medium": 12.0, "strong": 24.0}  # dB of noise reduction
DEFAULT_DENOISE = DENOISE_STRENGTHS["medium"]
# the formats of timelines for editors (nemowatch/timelines.py FORMATS)
TimelineFormat = Literal["otio", "fcpxml", "xml", "edl", "kdenlive"]

Corner = Literal["top-left", "top-right", "bottom-left", "bottom-right"]


class ColorAdjust(Frozen):
    """Brightness, contrast, saturation and warmth of the picture; each left out is unchanged."""

    brightness: float | None = Field(default=None, ge=-1.0, le=1.0)  # added to luma; 0 none
    contrast: float | None = Field(default=None, ge=0.1, le=3.0)  # 1 unchanged
    saturation: float | None = Field(default=None, ge=0.0, le=3.0)  # 1 unchanged, 0 grey
    warmth: float | None = Field(default=None, ge=-1.0, le=1.0)  # + warmer (redder), - cooler


class Watermark(Frozen):
    """An image laid over a corner of the picture for the whole video."""

    file: str = Field(min_length=1)  # in `edit:`, relative to the rule's file
    corner: Corner = "bottom-right"
    opacity: float = Field(default=0.8, gt=0.0, le=1.0)
    size: float = Field(default=0.15, ge=0.02, le=1.0)  # its width, a fraction of the frame's


# The `enhance` preset, for vague requests ("make it look better", 润色一下): one fixed,
# light treatment, said in full by `explain` (ENHANCE_DESCRIPTION).
# No auto levels: FFmpeg's `normalize` darkens a frame of one colour (a white title card
# comes out grey), so the preset's picture is a fixed, gentle contrast and saturation.
ENHANCE_CONTRAST = 1.05  # unless the edit sets its own `color`
ENHANCE_SATURATION = 1.1  # unless the edit sets its own `color`
ENHANCE_DENOISE = DENOISE_STRENGTHS["light"]  # unless the edit sets its own `denoise`
ENHANCE_DESCRIPTION = (
    f"enhance: contrast x{ENHANCE_CONTRAST:g}, saturation x{ENHANCE_SATURATION:g}, light"
    f" video denoise, {ENHANCE_DENOISE:g} dB hiss reduction"
    ", loudness normalized to -14 LUFS"
)

MOODS = ("lofi", "upbeat", "calm")  # built-in music, generated by nemowatch itself


# ---- photos and sound files (issue 13) ---------------------------------------------------
class Still(Frozen):
    """How a photo becomes a shot."""

    duration: float = Field(default=5.0, gt=0.0, le=600.0)  # seconds
    motion: bool = True  # a slow pan and zoom (Ken Burns), the same for the same photo


class Audiogram(Frozen):
    """How a sound file becomes a video: its wave drawn over a background."""

    style: Literal["waveform", "spectrum"] = "waveform"
    color: str = Field(default="white", pattern=r"^(#[0-9a-fA-F]{6}|[A-Za-z]+)$")  # the wave's
    # the background without a cover picture
    background: str = Field(default="#101820", pattern=r"^(#[0-9a-fA-F]{6}|[A-Za-z]+)$")
    # a picture (in `edit:`, relative to the rule's file); unset: the file's embedded cover,
    # else one named like it or cover.jpg beside it, else `background`
    cover: str | None = Field(default=None, min_length=1)


def unquoted_aspect(value: object) -> object:
    """An aspect as written: YAML 1.1 reads an unquoted 16:9 as the base-60 number 969."""
    if isinstance(value, int) and not isinstance(value, bool):
        minutes, seconds = divmod(value, 60)
        return f"{minutes}:{seconds}"
    return value


class EditSpec(Frozen):
    """The structured form of an edit. Fields left at None (or their default) are not applied."""

    cut_silences: SilenceCut | None = None
    trim: Trim | None = None
    max_duration: float | None = Field(default=None, gt=0.0)  # a highlight reel this long
    speed: float | None = Field(default=None, ge=0.5, le=4.0)  # pitch is preserved
    aspect: Literal["16:9", "9:16", "1:1", "4:5"] | None = None
    fit: Literal["crop", "blur", "pad"] = "blur"  # how the frame meets a new aspect
    title: TextOverlay | None = None
    texts: tuple[TextOverlay, ...] = ()  # further overlays
    music: str | None = None  # a mood (lofi, upbeat, calm), a file, or a folder of tracks
    music_volume: float = Field(default=0.35, ge=0.0, le=1.0)  # of full scale
    duck: bool = True  # lower the music under speech
    fade_in: float | None = Field(default=None, ge=0.0, le=60.0)  # seconds
    fade_out: float | None = Field(default=None, ge=0.0, le=60.0)
    mute: bool = False  # drop the source's own audio
    volume: float | None = Field(default=None, ge=0.0, le=8.0)  # gain on the source's audio
    normalize: bool = True  # -14 LUFS integrated, true peak <= -1 dBTP (engines/local/loudness.py)
    captions: Captions | None = None  # speech to text (the `captions` extra)
    remove_fillers: FillerCut | None = None  # "um", "uh" ... cut (the `captions` extra)
    # picture and sound effects
    denoise: float | None = Field(default=None, ge=1.0, le=60.0)  # dB of hiss reduction
    color: ColorAdjust | None = None
    watermark: Watermark | None = None
    reverse: bool = False  # play backwards (picture and sound)
    loop: int | None = Field(default=None, ge=2, le=20)  # play the edit this many times
    enhance: bool = False  # the `enhance` preset: see engines/local/effects.py
    still: Still = Still()  # a photo's shot (issue 13)
    audiogram: Audiogram = Audiogram()  # a sound file's picture (issue 13)

    @field_validator("cut_silences", "captions", "remove_fillers", mode="before")
    @classmethod
    def _expand_bool(cls, value: object) -> object:
        # shorthand: `cut_silences: true` means the defaults, `false` means off
        if value is True:
            return {}
        if value is False:
            return None
        return value

    @field_validator("aspect", mode="before")
    @classmethod
    def _unquoted_aspect(cls, value: object) -> object:
        return unquoted_aspect(value)

    @field_validator("title", mode="before")
    @classmethod
    def _expand_title(cls, value: object) -> object:
        # shorthand: `title: "Urban Dreams"`
        return {"text": value} if isinstance(value, str) else value

    @field_validator("fade_in", "fade_out", mode="before")
    @classmethod
    def _expand_fade(cls, value: object) -> object:
        # shorthand: `fade_out: true` is a one-second fade
        if value is True:
            return 1.0
        if value is False:
            return None
        return value

    @field_validator("music_volume", "volume", mode="before")
    @classmethod
    def _expand_percent(cls, value: object) -> object:
        # "35%" or "35 %" means 0.35
        if isinstance(value, str) and value.strip().endswith("%"):
            try:
                return float(value.strip()[:-1].strip()) / 100.0
            except ValueError:
                return value
        return value

    @field_validator("denoise", mode="before")
    @classmethod
    def _expand_denoise(cls, value: object) -> object:
        # shorthand: `denoise: true` (medium), or a strength by name
        if value is True:
            return DEFAULT_DENOISE
        if value is False:
            return None
        if isinstance(value, str) and value.strip().lower() in DENOISE_STRENGTHS:
            return DENOISE_STRENGTHS[value.strip().lower()]
        return value

    @field_validator("watermark", mode="before")
    @classmethod
    def _expand_watermark(cls, value: object) -> object:
        # shorthand: `watermark: logo.png`
        return {"file": value} if isinstance(value, str) else value

    @field_validator("loop", mode="before")
    @classmethod
    def _expand_loop(cls, value: object) -> object:
        # `loop: false` (or 1: played once) is no loop
        return None if value is False or value == 1 else value

    def merged(self, other: EditSpec) -> EditSpec:
        """This spec with every field `other` sets explicitly laid over it."""
        updates = {name: getattr(other, name) for name in other.model_fields_set}
        return self.model_copy(update=updates)


class Quality(StrEnum):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"


RESOLUTIONS: dict[str, int] = {  # name -> the output's short side, in pixels
    "240p": 240,
    "360p": 360,
    "480p": 480,
    "720p": 720,
    "1080p": 1080,
    "1440p": 1440,
    "2160p": 2160,
}


class ExportSpec(Frozen):
    """How the result is encoded."""

    format: Literal["mp4", "mov", "webm", "gif"] = "mp4"  # webm: VP9 + Opus; gif: short clips
    resolution: Literal["source", "240p", "360p", "480p", "720p", "1080p", "1440p", "2160p"] = (
        "source"
    )
    quality: Quality = Quality.HIGH
    fps: float | None = Field(default=None, gt=0.0, le=120.0)  # None: the source's rate
    # auto: a job that only cuts copies the source's whole GOPs and encodes only the frames
    # around each cut, where the edit and the source allow it (see docs/editing.md)
    smart: Literal["auto", "off"] = "auto"
    # timelines for editors written beside the output, linking the source (timelines.py)
    timelines: tuple[TimelineFormat, ...] = ()

    @field_validator("timelines", mode="after")
    @classmethod
    def _once_each(cls, value: tuple[TimelineFormat, ...]) -> tuple[TimelineFormat, ...]:
        return tuple(dict.fromkeys(value))  # in the order given, each once

    @property
    def short_side(self) -> int | None:
        """The target short side in pixels, or None to keep the source's size."""
        return RESOLUTIONS.get(self.resolution)

    @property
    def extension(self) -> str:
        return "." + self.format

    def merged(self, overrides: dict[str, object]) -> ExportSpec:
        """Fields from `overrides` (e.g. read from instruction text) where this spec left
        them unset; the fields this spec sets explicitly win."""
        updates = {
            name: value for name, value in overrides.items() if name not in self.model_fields_set
        }
        return ExportSpec.model_validate({**self.model_dump(exclude_unset=True), **updates})


def matches(name: str, patterns: Iterable[str]) -> bool:
    """Whether a file name matches any glob, case-insensitively (`*.MP4` is `*.mp4`)."""
    lowered = name.lower()
    return any(fnmatch.fnmatchcase(lowered, pattern.lower()) for pattern in patterns)
