"""The local engine's timeline: kept segments and the edit become the whole Draft. Pure.

The Draft keeps NemoVideo's shape (tracks `t` with `tt` 0 video / 1 audio / 7 text,
segments `sg`, duration `d` in milliseconds, metadata `m`) and is everything the render
needs besides the files themselves:

- video (`tt` 0): one segment per kept stretch of the source, `s`/`e` its place in the
  source and `at`/`d` its place in the output (after the speed change), in milliseconds;
- source audio (`tt` 1, `m.kind` "source"): the same segments, unless muted or absent;
- music (`tt` 1, `m.kind` "music"): one segment over the whole output, with the track,
  its volume, fades, and the output windows it is ducked under (where the source speaks);
- text (`tt` 7): one segment per title or caption, `at`/`d` in output time;
- `m`: the source's facts, the output's size, frame rate and format, and the edit's
  whole-timeline settings (aspect, fit, speed, fades, normalisation), and `warnings`
  where the plan falls short of the edit (only when it does): `TimelineFacts`; `effects`
  (denoise, colour, watermark, reverse, loop; only when there are some): `Effects`.

A loop plays the video segments (one pass) several times: the draft's duration is the
pass's times the loop count.

Times in the output are the source's times divided by the speed.

The render reads a Draft back through the typed views at the end of this module
(`TimelineFacts.of`, `cuts_of`, `music_of`, `texts_of`, `source_audio_of`), never its dicts.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Protocol

from nemowatch.engines.base import (
    AUDIO_TRACK,
    EDIT_FRAME,
    JSON,
    TEXT_TRACK,
    VIDEO_TRACK,
    Draft,
    Frame,
    JSONObject,
    Track,
    TrackSegment,
)
from nemowatch.engines.local.analysis import Stretch
from nemowatch.engines.local.effects import Effects, check_held_frames, pass_windows
from nemowatch.engines.local.music import MusicChoice
from nemowatch.errors import MediaError
from nemowatch.rules import EditSpec, ExportSpec

GIF_MAX_SIDE = 480  # pixels, the longer side of a GIF
GIF_MAX_FPS = 15.0
GIF_MAX_DURATION = 60.0  # seconds of output

MUSIC_FADE_IN = 1.0  # seconds
MUSIC_FADE_OUT = 2.0
DUCK_DB = -15.0  # the music's level under speech, relative to its level in the gaps
DUCK_ATTACK = 0.25  # seconds: the music is down by the time speech starts ...
DUCK_RELEASE = 0.5  # ... and back up this long after it ends
# Speech windows closer than this are ducked as one: the music would only bob up between
# words. Never less than attack + release, so ramps of two windows never overlap.
DUCK_BRIDGE = 1.0

_ASPECTS = {"16:9": (16, 9), "9:16": (9, 16), "1:1": (1, 1), "4:5": (4, 5)}


class Span(Protocol):
    """A stretch of the source in seconds (the planner's and the analysis' segments)."""

    @property
    def start(self) -> float: ...

    @property
    def end(self) -> float: ...


@dataclass(frozen=True)
class SourceFacts:
    """What the timeline needs to know about the source."""

    name: str
    duration: float  # seconds
    width: int | None  # as displayed (after any rotation the file asks for)
    height: int | None
    fps: float | None
    has_audio: bool
    format: str | None = None  # the container, as probed ("mov,mp4,m4a,3gp,3g2,mj2")


@dataclass(frozen=True)
class Cut(Stretch):
    """A kept stretch of the source (what the render trims)."""


@dataclass(frozen=True)
class TextItem:
    """A title or caption as the render draws it, in output seconds."""

    text: str
    start: float
    duration: float
    position: str  # top | center | bottom
    size: float  # text height as a fraction of the frame's height

    @property
    def end(self) -> float:
        return self.start + self.duration


@dataclass(frozen=True)
class MusicBed:
    """The music track as the render plays it."""

    source: str  # a mood's name (generated) or the path of an audio file
    generated: bool
    volume: float
    fade_in: float
    fade_out: float
    duck_db: float | None  # None: not ducked
    duck_under: tuple[tuple[float, float], ...]  # output windows (seconds) it is ducked under


@dataclass(frozen=True)
class SourceAudio:
    """The source's sound as the render plays it."""

    volume: float


@dataclass(frozen=True)
class TimelineFacts:
    """The whole timeline's facts, the draft's `m`: written by `build_draft`, read back by
    `of` (once per builder), so the render reads typed fields, not keys.

    Drafts of earlier versions have only `width`, `height` (the source's), `fps`, `source`
    and `source_duration_ms`: `sized` is False for them, and `source_fps` is their `fps`.
    """

    source: str | None = None  # the source's name
    source_duration_ms: int | None = None
    source_width: int | None = None  # as displayed (after any rotation)
    source_height: int | None = None
    source_fps: float | None = None
    has_audio: bool = False
    source_format: str | None = None  # the container, as probed ("mov,mp4,m4a,3gp,3g2,mj2")
    width: int | None = None  # the output's size
    height: int | None = None
    fps: float | None = None  # the output's frame rate
    aspect: str | None = None  # "16:9", "9:16", "1:1", "4:5"; None: the source's
    fit: str = "blur"  # crop | blur | pad
    speed: float = 1.0
    fade_in: float | None = None  # seconds
    fade_out: float | None = None
    normalize: bool = False
    format: str | None = None  # the export's
    quality: str | None = None
    resolution: str | None = None
    sized: bool = True  # False: a draft of an earlier version (its width is the source's)
    warnings: tuple[str, ...] = ()  # where the plan falls short (a reel shorter than asked)

    @classmethod
    def of(cls, draft: Draft) -> TimelineFacts:
        metadata = draft.metadata
        fps = _number(metadata.get("fps"))
        return cls(
            source=_text(metadata.get("source")),
            source_duration_ms=_whole(metadata.get("source_duration_ms")),
            source_width=_whole(metadata.get("source_width")),
            source_height=_whole(metadata.get("source_height")),
            # drafts of earlier versions: "fps" is both
            source_fps=_number(metadata["source_fps"]) if "source_fps" in metadata else fps,
            has_audio=bool(metadata.get("has_audio", False)),
            source_format=_text(metadata.get("source_format")),
            width=_whole(metadata.get("width")),
            height=_whole(metadata.get("height")),
            fps=fps,
            aspect=_text(metadata.get("aspect")),
            fit=str(metadata.get("fit", "blur")),
            speed=_number(metadata.get("speed")) or 1.0,
            fade_in=_number(metadata.get("fade_in")),
            fade_out=_number(metadata.get("fade_out")),
            normalize=bool(metadata.get("normalize", False)),
            format=_text(metadata.get("format")),
            quality=_text(metadata.get("quality")),
            resolution=_text(metadata.get("resolution")),
            sized="source_width" in metadata,
            warnings=draft.warnings,
        )

    def to_json(self) -> JSONObject:
        """The draft's `m` (of a draft of this version: `sized`); `warnings` only when
        there are some, so drafts without any keep the keys of earlier versions."""
        metadata: JSONObject = {
            "source": self.source,
            "source_duration_ms": self.source_duration_ms,
            "source_width": self.source_width,
            "source_height": self.source_height,
            "source_fps": self.source_fps,
            "has_audio": self.has_audio,
            "source_format": self.source_format,
            "width": self.width,
            "height": self.height,
            "fps": self.fps,
            "aspect": self.aspect,
            "fit": self.fit,
            "speed": self.speed,
            "fade_in": self.fade_in,
            "fade_out": self.fade_out,
            "normalize": self.normalize,
            "format": self.format,
            "quality": self.quality,
            "resolution": self.resolution,
        }
        if self.warnings:
            metadata["warnings"] = list(self.warnings)
        return metadata

    @property
    def output_size(self) -> tuple[int | None, int | None]:
        """The output's size, when the draft knows it."""
        if not self.sized:
            return None, None  # a draft of an earlier version: its width is the source's
        return self.width or None, self.height or None

    @property
    def source_size(self) -> tuple[int, int] | None:
        """The source's size (as displayed), when the draft knows it."""
        if self.source_width and self.source_height:
            return self.source_width, self.source_height
        return None

    @property
    def source_end(self) -> float | None:
        """The source's duration in seconds, when the draft knows it."""
        if self.source_duration_ms is None:
            return None
        return self.source_duration_ms / 1000


def build_draft(
    segments: Sequence[Span],
    *,
    source: SourceFacts,
    edit: EditSpec,
    export: ExportSpec,
    speech: Sequence[Span] = (),
    music: MusicChoice | None = None,
    warnings: Sequence[str] = (),
    captions: Track | None = None,
    watermark: str | None = None,
) -> Draft:
    """The Draft that plays `segments` of the source as `edit` and `export` say.

    `speech` are the stretches of the source where someone speaks (the music is ducked
    under them); `music` is the resolved music of the edit, if any; `warnings` what the
    plan falls short of (kept in `m.warnings`); `captions` the captions track, timed on the
    output (captions.py); `watermark` the resolved path of the edit's watermark image;
    effects go in `m.effects` (see `effects`). Raises `MediaError`
    when nothing would be left, or a GIF would be longer than GIF_MAX_DURATION.
    """
    speed = edit.speed or 1.0
    cuts = [Cut(segment.start, segment.end) for segment in segments if segment.end > segment.start]
    if not cuts:
        raise MediaError(
            f"the edit keeps nothing of {source.name}",
            hint="check the rule's trim, silence cut and highlight settings",
        )
    video_segments = _timeline_segments(cuts, speed)
    # One pass of the cuts; a loop plays it `effects.loop` times (the segments are one pass).
    pass_ms = video_segments[-1]["at"] + video_segments[-1]["d"]
    effects = Effects.of_edit(edit, watermark)
    duration_ms = pass_ms * effects.loop
    duration = duration_ms / 1000
    if export.format == "gif" and duration > GIF_MAX_DURATION + 0.0005:
        raise MediaError(
            f"a GIF of {duration:.1f} s is too long (at most {GIF_MAX_DURATION:g} s)",
            hint="set `max_duration` (or a trim) to 60 s or less, or export as mp4 or webm",
        )
    width, height = output_size(source.width, source.height, edit.aspect, export)
    fps = output_fps(source.fps, speed, export)
    check_held_frames(
        effects, pass_duration=pass_ms / 1000, width=width, height=height, fps=fps,
        source=source.name,
    )  # fmt: skip
    tracks: list[Track] = [{"tt": VIDEO_TRACK, "sg": video_segments, "m": {"kind": "video"}}]
    with_audio = export.format != "gif"  # a GIF has no sound
    source_audio = with_audio and source.has_audio and not edit.mute
    if source_audio:
        tracks.append(
            {
                "tt": AUDIO_TRACK,
                "sg": [segment.copy() for segment in video_segments],
                "m": {"kind": "source", "volume": edit.volume if edit.volume is not None else 1.0},
            }
        )
    if music is not None and with_audio:
        under = (
            pass_windows(
                speech_windows(speech, cuts, speed, pass_ms / 1000), pass_ms / 1000, effects
            )
            if source_audio and edit.duck
            else ()
        )
        fade_in = min(MUSIC_FADE_IN, duration / 4)
        fade_out = min(MUSIC_FADE_OUT, duration / 4)
        tracks.append(
            {
                "tt": AUDIO_TRACK,
                "sg": [{"at": 0, "d": duration_ms}],
                "m": {
                    "kind": "music",
                    "source": music.source,
                    "generated": music.generated,
                    "volume": edit.music_volume,
                    "fade_in": round(fade_in, 3),
                    "fade_out": round(fade_out, 3),
                    "duck": (
                        {"db": DUCK_DB, "under": [[_ms(start), _ms(end)] for start, end in under]}
                        if source_audio and edit.duck
                        else None
                    ),
                },
            }
        )
    texts = text_segments(edit, duration)
    if texts:
        tracks.append({"tt": TEXT_TRACK, "sg": texts})
    if captions is not None and captions.get("sg"):
        tracks.append(captions)
    facts = TimelineFacts(
        source=source.name,
        source_duration_ms=_ms(source.duration),
        source_width=source.width,
        source_height=source.height,
        source_fps=source.fps,
        has_audio=source.has_audio,
        source_format=source.format,
        width=width,
        height=height,
        fps=fps,
        aspect=edit.aspect,
        fit=edit.fit,
        speed=speed,
        fade_in=_fade(edit.fade_in, duration),
        fade_out=_fade(edit.fade_out, duration),
        normalize=edit.normalize or edit.enhance,  # the enhance preset normalizes
        format=export.format,
        quality=export.quality.value,
        resolution=export.resolution,
        warnings=(*warnings, *_unheard_denoise(edit, source, with_audio)),
    )
    metadata = facts.to_json()
    if effects.any:
        metadata["effects"] = effects.to_json()
    return Draft(tracks=tuple(tracks), duration_ms=duration_ms, metadata=metadata)


def _unheard_denoise(edit: EditSpec, source: SourceFacts, with_audio: bool) -> list[str]:
    """A warning when `denoise` was asked for but none of the source's sound is played."""
    if edit.denoise is None:
        return []
    if not source.has_audio:
        return [f"denoise was asked for, but {source.name} has no sound"]
    if edit.mute or not with_audio:
        return ["denoise was asked for, but the output plays none of the source's sound"]
    return []


def retarget(draft: Draft, export: ExportSpec, frame: Frame = EDIT_FRAME) -> Draft:
    """`draft` made for `export`, when it was planned for another one: the output's size,
    frame rate and format follow the export; a GIF loses the sound (and must be short).
    `frame` (one output of several) may give the picture another aspect and fit: the
    output's size follows it too.

    Drafts that do not know their source's size (of earlier versions) only change format.
    """
    facts = TimelineFacts.of(draft)
    aspect = frame.aspect or facts.aspect
    fit = frame.fit or facts.fit
    planned = (facts.format, facts.resolution, facts.quality, facts.aspect, facts.fit)
    wanted = (export.format, export.resolution, export.quality.value, aspect, fit)
    fps = output_fps(facts.source_fps, facts.speed, export)
    if planned == wanted and fps == facts.fps:
        return draft
    if frame.aspect is not None and not facts.sized:
        raise MediaError(
            f"output {frame.output!r} asks for {frame.aspect}, but this edit was planned by an"
            " earlier version of nemowatch that did not record the source's size",
            hint="retry the job (`nemowatch retry`): it is planned again",
        )
    if export.format == "gif" and draft.duration > GIF_MAX_DURATION + 0.0005:
        raise MediaError(
            f"a GIF of {draft.duration:.1f} s is too long (at most {GIF_MAX_DURATION:g} s)",
            hint="set `max_duration` (or a trim) to 60 s or less, or export as mp4 or webm",
        )
    # the keys this version writes, over all the draft has (of earlier versions too)
    updated: JSONObject = {
        **draft.metadata,
        "format": export.format,
        "resolution": export.resolution,
        "quality": export.quality.value,
        "aspect": aspect,
        "fit": fit,
    }
    if facts.sized:
        width, height = output_size(facts.source_width, facts.source_height, aspect, export)
        updated.update(width=width, height=height, fps=fps)
        effects = Effects.of(draft)  # a larger frame holds more memory in reverse and loop
        check_held_frames(
            effects, pass_duration=draft.duration / effects.loop, width=width, height=height,
            fps=fps, source=facts.source or "the source",
        )  # fmt: skip
    tracks = draft.tracks
    if export.format == "gif":
        tracks = tuple(track for track in tracks if track.get("tt") != AUDIO_TRACK)
    return Draft(tracks=tracks, duration_ms=draft.duration_ms, metadata=updated)


def output_size(
    width: int | None, height: int | None, aspect: str | None, export: ExportSpec
) -> tuple[int | None, int | None]:
    """The output's size: the aspect (or the source's) at the export's short side.

    The short side is the export's resolution, or the source's short side for `source`.
    Both sides are even (4:2:0 video needs it); a GIF is scaled down to fit GIF_MAX_SIDE.
    None, None when the source's size is unknown and no aspect fixes it.
    """
    if aspect is not None:
        across, down = _ASPECTS[aspect]
    elif width and height:
        across, down = width, height
    else:
        return None, None
    short = export.short_side
    if short is None:
        if not (width and height):
            return None, None
        short = min(width, height)
    if across >= down:
        size = (_even(short * across / down), _even(short))
    else:
        size = (_even(short), _even(short * down / across))
    if export.format == "gif" and max(size) > GIF_MAX_SIDE:
        scale = GIF_MAX_SIDE / max(size)
        size = (_even(size[0] * scale), _even(size[1] * scale))
    return size


def output_fps(source_fps: float | None, speed: float, export: ExportSpec) -> float | None:
    """The output's frame rate: the export's, else the source's (also after a speed change,
    which would otherwise multiply it); for a GIF, at most GIF_MAX_FPS and a whole number
    of hundredths of a second a frame."""
    fps = export.fps or source_fps
    if export.format == "gif":
        # A GIF counts time in hundredths of a second: a whole number of them a frame
        # keeps its timing even.
        return 100 / math.ceil(100 / min(fps or GIF_MAX_FPS, GIF_MAX_FPS) - 1e-9)
    return fps


def fps_value(fps: float) -> str:
    """A frame rate as FFmpeg reads it, as an exact fraction where it is one: NTSC's
    29.97 is "30000/1001", a GIF's 14.29 is "100/7"."""
    rate = Fraction(fps).limit_denominator(1001)
    return str(rate.numerator) if rate.denominator == 1 else f"{rate.numerator}/{rate.denominator}"


def speech_windows(
    speech: Sequence[Span], cuts: Sequence[Cut], speed: float, duration: float
) -> tuple[tuple[float, float], ...]:
    """Where the source speaks in the output, in output seconds, windows close together
    joined (DUCK_BRIDGE)."""
    windows: list[tuple[float, float]] = []
    position = 0.0
    for cut in cuts:
        for span in speech:
            start, end = max(span.start, cut.start), min(span.end, cut.end)
            if end > start:
                windows.append(
                    ((position + start - cut.start) / speed, (position + end - cut.start) / speed)
                )
        position += cut.duration
    windows.sort()
    joined: list[tuple[float, float]] = []
    for start, end in windows:
        start, end = max(0.0, start), min(duration, end)
        if end <= start:
            continue
        if joined and start - joined[-1][1] < DUCK_BRIDGE:
            joined[-1] = (joined[-1][0], max(joined[-1][1], end))
        else:
            joined.append((start, end))
    return tuple((round(start, 3), round(end, 3)) for start, end in joined)


def text_segments(edit: EditSpec, duration: float) -> list[TrackSegment]:
    """The title, then the further texts, as text-track segments inside the output."""
    overlays = ([edit.title] if edit.title is not None else []) + list(edit.texts)
    segments: list[TrackSegment] = []
    for overlay in overlays:
        start = overlay.start
        if start >= duration:
            continue  # it would start after the video ends
        length = min(overlay.duration, duration - start)
        segments.append(
            {
                "text": overlay.text,
                "at": _ms(start),
                "d": _ms(length),
                "position": overlay.position,
                "size": overlay.size,
            }
        )
    return segments


# reading a Draft back (the render's side)


def cuts_of(draft: Draft) -> list[Cut]:
    """The stretches of the source the draft's video track keeps, on the source's frame grid.

    Milliseconds cannot hold every frame boundary (1/30 s): they are snapped back to it.
    """
    facts = TimelineFacts.of(draft)
    source_end = facts.source_end
    limit = source_end if source_end is not None else float("inf")
    video = track_of(draft, VIDEO_TRACK)
    if video is None:
        return []
    return [
        Cut(
            _snap(item["s"] / 1000, facts.source_fps, limit),
            _snap(item["e"] / 1000, facts.source_fps, limit),
        )
        for item in video.get("sg", [])
    ]


def track_of(draft: Draft, kind: int, name: str | None = None) -> Track | None:
    """The draft's first track of type `kind` (and `m.kind` `name`, when given)."""
    for track in draft.tracks:
        if track.get("tt") != kind:
            continue
        if name is None or track.get("m", {}).get("kind", "source") == name:
            return track
    return None


def source_audio_of(draft: Draft) -> SourceAudio | None:
    """The source's sound (drafts without `m.kind` on audio tracks: the first audio track)."""
    track = track_of(draft, AUDIO_TRACK, "source")
    if track is None:
        return None
    volume = _number(track.get("m", {}).get("volume"))
    return SourceAudio(volume=1.0 if volume is None else volume)


def music_of(draft: Draft) -> MusicBed | None:
    """The draft's music bed, if it has one."""
    track = track_of(draft, AUDIO_TRACK, "music")
    if track is None:
        return None
    metadata = track["m"]
    duck = metadata.get("duck")
    volume = _number(metadata.get("volume"))
    return MusicBed(
        source=str(metadata["source"]),
        generated=bool(metadata.get("generated", False)),
        volume=1.0 if volume is None else volume,
        fade_in=_number(metadata.get("fade_in")) or 0.0,
        fade_out=_number(metadata.get("fade_out")) or 0.0,
        duck_db=_number(duck.get("db")) if isinstance(duck, dict) else None,
        duck_under=_windows(duck.get("under")) if isinstance(duck, dict) else (),
    )


def texts_of(draft: Draft) -> list[TextItem]:
    """The texts the render draws, in output seconds: titles, then burned-in captions
    (captions with `m.burn` false become a subtitle track instead)."""
    return [
        TextItem(
            text=str(item["text"]),
            start=item["at"] / 1000,
            duration=item["d"] / 1000,
            position=str(item.get("position", "center")),
            size=float(item.get("size", 0.07)),
        )
        for track in draft.tracks
        if track.get("tt") == TEXT_TRACK and track.get("m", {}).get("burn", True)
        for item in track.get("sg", [])
    ]


def _timeline_segments(cuts: Sequence[Cut], speed: float) -> list[TrackSegment]:
    # Output places are computed from the running total, so rounding never drifts.
    segments: list[TrackSegment] = []
    elapsed = 0.0
    for cut in cuts:
        at = _ms(elapsed / speed)
        elapsed += cut.duration
        segments.append(
            {"s": _ms(cut.start), "e": _ms(cut.end), "at": at, "d": _ms(elapsed / speed) - at}
        )
    return segments


def _fade(seconds: float | None, duration: float) -> float | None:
    if not seconds:
        return None
    return round(min(seconds, duration / 2), 3)


def _snap(time: float, fps: float | None, limit: float) -> float:
    if fps is None or fps <= 0:
        return min(time, limit)
    return min(round(time * fps) / fps, limit)


def _even(value: float) -> int:
    return max(2, 2 * round(value / 2))


def _ms(seconds: float) -> int:
    return round(seconds * 1000)


# JSON values as the typed fields read them (a value of another type reads as unknown)


def _number(value: JSON) -> float | None:
    return float(value) if isinstance(value, int | float) else None


def _whole(value: JSON) -> int | None:
    return int(value) if isinstance(value, int | float) else None


def _text(value: JSON) -> str | None:
    return value if isinstance(value, str) else None


def _windows(value: JSON) -> tuple[tuple[float, float], ...]:
    """Output windows `[[start_ms, end_ms], ...]` in seconds."""
    if not isinstance(value, list):
        return ()
    windows = []
    for window in value:
        if isinstance(window, list) and len(window) == 2:
            start, end = _number(window[0]), _number(window[1])
            if start is not None and end is not None:
                windows.append((start / 1000, end / 1000))
    return tuple(windows)
