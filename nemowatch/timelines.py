"""Timelines for editors: a job's Draft as an OpenTimelineIO timeline, in the formats
editors import (issue 18). Building is pure; writing goes through OpenTimelineIO's adapter
plug-ins, which know each format (nothing here writes XML or EDL by hand).

Formats, by the name a rule gives them:

    otio      OpenTimelineIO JSON      everything below
    fcpxml    Final Cut Pro X, Resolve  cuts, audio lanes; titles and captions as markers,
                                        the music's level and ducking and the left-out list
                                        as notes
    xml       FCP 7 (Premiere, Resolve) cuts, audio tracks, the music's level and ducking
                                        as Audio Levels keyframes, titles as Text
                                        generators, captions as markers
    edl       CMX 3600                  the picture cut only
    kdenlive  Kdenlive                  cuts, audio tracks, the music's level and ducking as
                                        volume keyframes (dB), titles and captions as guides

What a format cannot carry (blur background, loudness, speed, effects, captions
styling...) is returned in `Built.left_out`, and kept in the timeline's metadata
(`nemowatch.left_out`) where the format writes metadata.

The local engine's drafts hold each kept segment's place in the source (`s`/`e`): the
timeline links the original source, one clip per segment. A NemoVideo draft places its
segments in the output (`at`, `d`) and names the file each plays (`src`, `from`): the
stretches of the upload link the original source at their in points, and what the cloud
made (generated clips, music) links the downloaded render at the same time of the
output (cloudcut.py).

OpenTimelineIO and the adapters are the `timelines` extra: imported only when a timeline is
built (`missing_package` says how to install them).
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from nemowatch import cloudcut, levels
from nemowatch.cloudcut import Uploaded
from nemowatch.engines.base import (
    AUDIO_TRACK,
    TEXT_TRACK,
    VIDEO_TRACK,
    Draft,
    Track,
    TrackSegment,
)
from nemowatch.engines.local.batch import Part, parts_of
from nemowatch.engines.local.timeline import (
    TimelineFacts,
    music_of,
    track_of,
)
from nemowatch.errors import MediaError

if TYPE_CHECKING:
    import opentimelineio as otio

# a rule's name for each format -> (the OpenTimelineIO adapter, the file's extension)
FORMATS: dict[str, tuple[str, str]] = {
    "otio": ("otio_json", ".otio"),
    "fcpxml": ("fcpx_xml", ".fcpxml"),
    "xml": ("fcp_xml", ".xml"),
    "edl": ("cmx_3600", ".edl"),
    "kdenlive": ("kdenlive", ".kdenlive"),
}
# the Python module of each adapter plug-in (what `pip install nemowatch[timelines]` brings)
_PLUGINS = {
    "otio_json": "opentimelineio",
    "fcpx_xml": "otio_fcpx_xml_adapter",
    "fcp_xml": "otio_fcp_adapter",
    "cmx_3600": "otio_cmx3600_adapter",
    "kdenlive": "otio_kdenlive_adapter",
}
INSTALL_HINT = "install the timelines extra: pip install 'nemowatch[timelines]'"
DEFAULT_FPS = 25.0  # a draft that does not know its frame rate (NemoVideo's)


@dataclass(frozen=True)
class Built:
    """A timeline for one format, and what it leaves out of the edit."""

    timeline: otio.schema.Timeline
    left_out: tuple[str, ...]


def format_of(path: Path) -> str:
    """The format a timeline's file name asks for, from its extension."""
    for name, (_, extension) in FORMATS.items():
        if path.suffix.lower() == extension:
            return name
    known = ", ".join(extension for _, extension in FORMATS.values())
    raise MediaError(
        f"{path}: cannot tell the timeline's format from its extension",
        hint=f"name it with one of {known}",
    )


# The rates the FCP X adapter writes (its table keys NTSC rates as 23.98, 29.97, 59.94).
_FCPX_RATES = (23.98, 24.0, 25.0, 29.97, 30.0, 50.0, 59.94, 60.0)


def timecode_rate(fps: float, fmt: str = "edl") -> float:
    """The rate a sequence of `fps` frames a second is written at in format `fmt`, when
    the format counts in SMPTE timecode (all but otio): `fps` when the format knows it,
    else its smallest multiple that it knows (10 fps: 30, each frame three), so every
    cut stays on a frame; else the nearest rate it knows. FCP X knows fewer rates, and
    NTSC's as 29.97 (1/29.97 s and 1001/30000 s differ by a frame in nine hours)."""
    import opentimelineio as otio

    def known(rate: float) -> float | None:
        if fmt == "fcpxml":
            return next((item for item in _FCPX_RATES if abs(item - rate) < 0.01), None)
        return rate if otio.opentime.RationalTime.is_valid_timecode_rate(rate) else None

    for multiple in range(1, 13):
        found = known(fps * multiple)
        if found is not None:
            return found
    if fmt == "fcpxml":
        return min(_FCPX_RATES, key=lambda rate: abs(rate - fps))
    return float(otio.opentime.RationalTime.nearest_valid_timecode_rate(fps)) or DEFAULT_FPS


def missing_package(formats: Sequence[str] = tuple(FORMATS)) -> str | None:
    """Which package the timelines of `formats` need and is not installed, or None."""
    for name in formats:
        module = _PLUGINS[FORMATS[name][0]]
        if importlib.util.find_spec(module) is None:
            return module
    return None


def build(
    draft: Draft,
    fmt: str,
    *,
    source: Path,
    render: Path | None = None,
    uploaded: Uploaded | None = None,
) -> Built:
    """The timeline of `draft` for format `fmt` (a key of FORMATS).

    `source` is where the original source is (or will be) for good: the archived path
    under done/, or the source's own path when it is kept; `render` is the published
    output, linked where the draft does not say which part of the source plays (a
    NemoVideo draft's generated media, or all of it); `uploaded` is the source as the
    cloud knows it (a nemo job's upload), to tell the cloud's segments of it apart.
    """
    import opentimelineio as otio

    facts = TimelineFacts.of(draft)
    known_fps = facts.fps or (uploaded.fps if uploaded is not None else None)
    fps = known_fps or DEFAULT_FPS
    rate = timecode_rate(fps, fmt) if fmt != "otio" else fps
    left_out = _left_out_of_edit(draft, facts)
    multiple = rate / fps
    if abs(multiple - round(multiple)) > 1e-3 and known_fps:
        left_out.append(f"the frame rate ({known_fps:g} fps): the sequence runs at {rate:g} fps")
    timeline = otio.schema.Timeline(name=Path(facts.source or source.name).stem)
    timeline.global_start_time = otio.opentime.RationalTime(0, rate)
    video = otio.schema.Track(name="Video", kind=otio.schema.TrackKind.Video)
    timeline.tracks.append(video)
    video_track = track_of(draft, VIDEO_TRACK)
    segments = list(video_track.get("sg", [])) if video_track else []
    if segments and all("s" in item and "e" in item for item in segments):
        parts, soundtrack = parts_of(draft.metadata)  # a combined batch: each file its clips
        reference = _reference(source, facts, rate)

        def clips(items: Sequence[TrackSegment]) -> list[otio.schema.Clip]:
            if parts:
                return _parted(source, parts, items, rate)
            return [_clip(source.name, reference, item, rate) for item in items]

        video.extend(clips(segments))
        audio = track_of(draft, AUDIO_TRACK, "source")
        if audio is not None and fmt != "edl":
            sound = otio.schema.Track(name="Source audio", kind=otio.schema.TrackKind.Audio)
            sound.extend(clips(audio.get("sg", [])))
            timeline.tracks.append(sound)
        if soundtrack is not None:
            left_out.append(f"the folder's soundtrack ({soundtrack}) on a track of its own")
        if any(part.still for part in parts):
            left_out.append("the photos' slow zoom and pan (their clips show the still photos)")
        left_out += _music(timeline, draft, fmt, rate)
    else:
        if render is None:
            raise MediaError(
                "this edit's draft does not say which parts of the source it keeps"
                " (a NemoVideo edit): its timeline can only play the rendered video",
                hint="write the timeline after the render (export: timelines on the rule)",
            )
        cloud = _CloudCut(timeline, fmt, rate, source=source, render=render)
        left_out += cloud.lay_out(draft, uploaded or Uploaded(urls=frozenset()))
    left_out += _texts(timeline, draft, fmt, rate)
    if fmt == "edl" and (
        track_of(draft, AUDIO_TRACK) is not None or _text_items(draft, captions=False)
    ):
        left_out.append("sound, titles and captions (an EDL holds the picture cut only)")
    width, height = facts.output_size
    timeline.metadata["nemowatch"] = {
        "width": width,
        "height": height,
        "fps": rate,
        "source": str(source),
        "left_out": list(left_out),
    }
    if fmt == "fcpxml":
        _fcpx_note(video, left_out)
    return Built(timeline=timeline, left_out=tuple(left_out))


def write(built: Built, fmt: str, path: Path) -> None:
    """Write `built` to `path` through the format's adapter, atomically: a hidden file
    beside it, read back (the cuts must be there), then renamed over `path`."""
    import opentimelineio as otio

    adapter, _ = FORMATS[fmt]
    hidden = path.with_name(f".{path.name}.partial")
    try:
        with contextlib.redirect_stdout(io.StringIO()):  # the Kdenlive adapter prints a notice
            otio.adapters.write_to_file(built.timeline, str(hidden), adapter_name=adapter)
            rate = built.timeline.global_start_time.rate
            read_back = cut_list(read(hidden, fmt, rate), rate)
        expected = cut_list(built.timeline, rate)
        if read_back != expected:
            raise MediaError(
                f"{path}: the {fmt} timeline read back has the cuts {read_back}, not {expected}",
                hint="report this: the adapter did not keep the cut",
            )
        os.replace(hidden, path)
    except OSError as exc:
        raise MediaError(
            f"{path}: cannot write the timeline ({exc.strerror or exc})",
            hint="check that the folder exists and is writable",
        ) from exc
    except otio.exceptions.OTIOError as exc:
        raise MediaError(
            f"{path}: OpenTimelineIO cannot write it as {fmt} ({exc})",
            hint="try another format (otio keeps everything)",
        ) from exc
    finally:
        hidden.unlink(missing_ok=True)


def read(path: Path, fmt: str, rate: float | None = None) -> otio.schema.Timeline:
    """A timeline file read back through its format's adapter; an EDL does not say its
    frame rate: `rate` (else 24)."""
    import opentimelineio as otio

    options = {"rate": rate} if fmt == "edl" and rate else {}
    with contextlib.redirect_stdout(io.StringIO()):
        found = otio.adapters.read_from_file(str(path), adapter_name=FORMATS[fmt][0], **options)
    if isinstance(found, otio.schema.SerializableCollection):
        timelines = list(found.find_children(descended_from_type=otio.schema.Timeline))
        found = timelines[0] if timelines else None
    if not isinstance(found, otio.schema.Timeline):
        raise MediaError(f"{path}: holds no timeline", hint="write it again")
    return found


def cut_list(timeline: otio.schema.Timeline, rate: float) -> list[tuple[str, int, int]]:
    """The picture cut: for each clip of the first video track, the file it plays and its
    first and last frame + 1 in that file, counted at `rate` frames a second."""
    import opentimelineio as otio

    cuts = []
    for track in timeline.video_tracks()[:1]:
        for clip in track.find_clips():
            reference = clip.media_reference
            url = getattr(reference, "target_url", "") or ""
            name = Path(url).name if url else clip.name
            start = clip.source_range.start_time if clip.source_range else None
            duration = clip.source_range.duration if clip.source_range else None
            if start is None or duration is None:
                continue
            first = round(otio.opentime.to_seconds(start) * rate)
            count = round(otio.opentime.to_seconds(duration) * rate)
            cuts.append((name, first, first + count))
    return cuts


def _range(first: int, count: int, rate: float) -> otio.opentime.TimeRange:
    import opentimelineio as otio

    return otio.opentime.TimeRange(
        otio.opentime.RationalTime(first, rate), otio.opentime.RationalTime(count, rate)
    )


def _frame(milliseconds: int, rate: float) -> int:
    return round(milliseconds / 1000 * rate)


def _reference(source: Path, facts: TimelineFacts, rate: float) -> otio.schema.ExternalReference:
    import opentimelineio as otio

    duration_ms = facts.source_duration_ms
    available = _range(0, _frame(duration_ms, rate), rate) if duration_ms is not None else None
    reference = otio.schema.ExternalReference(
        target_url=source.resolve().as_uri(), available_range=available
    )
    reference.metadata["nemowatch"] = {"width": facts.source_width, "height": facts.source_height}
    return reference


def _clip(
    name: str,
    reference: otio.schema.ExternalReference,
    item: TrackSegment,
    rate: float,
) -> otio.schema.Clip:
    import opentimelineio as otio

    first, last = _frame(item["s"], rate), _frame(item["e"], rate)
    return otio.schema.Clip(
        name=name,
        media_reference=reference.clone(),
        source_range=_range(first, last - first, rate),
    )


def _parted(
    folder: Path, parts: Sequence[Part], items: Sequence[TrackSegment], rate: float
) -> list[otio.schema.Clip]:
    """A combined batch's segments, placed in its joined footage (`s`/`e`), as clips of the
    folder's files: a segment running over the end of one file goes on in the next."""
    import opentimelineio as otio

    bounds, offset = [], 0.0
    for part in parts:
        first = round(offset * rate)
        offset += part.seconds
        bounds.append((part, first, round(offset * rate)))
    clips = []
    for item in items:
        start, end = _frame(item["s"], rate), _frame(item["e"], rate)
        for part, first, last in bounds:
            low, high = max(start, first), min(end, last)
            if high <= low:
                continue
            reference = otio.schema.ExternalReference(
                target_url=(folder / part.file).resolve().as_uri(),
                available_range=_range(0, last - first, rate),
            )
            clips.append(
                otio.schema.Clip(
                    name=part.file,
                    media_reference=reference,
                    source_range=_range(low - first, high - low, rate),
                )
            )
    return clips


def _left_out_of_edit(draft: Draft, facts: TimelineFacts) -> list[str]:
    """What no format here carries, in words."""
    left: list[str] = []
    if facts.aspect is not None:
        background = {"blur": "a blurred background", "pad": "bars", "crop": "a crop"}
        left.append(f"the reframing to {facts.aspect} ({background.get(facts.fit, facts.fit)})")
    if facts.speed != 1.0:
        left.append(f"the speed change ({facts.speed:g}x): clips play at their own speed")
    if facts.fade_in or facts.fade_out:
        left.append("the fades in and out")
    if facts.normalize:
        left.append("loudness normalisation")
    effects = draft.metadata.get("effects")
    if isinstance(effects, dict) and effects:
        left.append("effects: " + ", ".join(sorted(effects)))
    if _text_items(draft, captions=True):
        left.append("the captions' styling (their texts are markers)")
    source_audio = track_of(draft, AUDIO_TRACK, "source")
    volume = source_audio.get("m", {}).get("volume") if source_audio else None
    if isinstance(volume, int | float) and volume != 1.0:
        left.append(f"the source's volume ({round(volume * 100)} %)")
    return left


def _music(timeline: otio.schema.Timeline, draft: Draft, fmt: str, rate: float) -> list[str]:
    """The music bed on a track of its own; what of it the format leaves out."""
    import opentimelineio as otio

    bed = music_of(draft)
    if bed is None or fmt == "edl":
        return []
    left: list[str] = []
    frames = round(draft.duration * rate)
    if bed.generated:
        reference: otio.core.MediaReference = otio.schema.MissingReference(
            name=f"music: {bed.source}"
        )
        name = f"{bed.source} (generated music)"
        left.append(f"the generated music ({bed.source}): not a file, the clip is offline")
    else:
        # its own length is not in the draft: the stretch that plays (the render loops
        # a shorter track)
        reference = otio.schema.ExternalReference(
            target_url=Path(bed.source).resolve().as_uri(),
            available_range=_range(0, frames, rate),
        )
        name = Path(bed.source).name
    clip = otio.schema.Clip(
        name=name, media_reference=reference, source_range=_range(0, frames, rate)
    )
    decibels = 20 * math.log10(max(bed.volume, 1e-5))
    under = ", ".join(f"{start:g}-{end:g} s" for start, end in bed.duck_under)
    left += levels.set_level(
        clip,
        fmt,
        what="music",
        volume=bed.volume,
        keyframes=levels.duck_keyframes(decibels, bed.duck_db, bed.duck_under, rate),
        described={
            "duck_db": bed.duck_db,
            "duck_under": [list(window) for window in bed.duck_under],
            "fade_in": bed.fade_in,
            "fade_out": bed.fade_out,
        },
        ducking=f"ducked {abs(bed.duck_db or 0):g} dB under speech at {under}" if under else None,
    )
    if fmt != "otio" and (bed.fade_in or bed.fade_out):
        left.append("the music's fades")
    track = otio.schema.Track(name="Music", kind=otio.schema.TrackKind.Audio)
    track.append(clip)
    timeline.tracks.append(track)
    return left


class _CloudCut:
    """A NemoVideo draft laid out on `timeline` (see cloudcut.py): the stretches of the
    upload as clips of the source at its final place, with their in points; what the cloud
    made as clips of the downloaded render at the same time of the output."""

    def __init__(
        self, timeline: otio.schema.Timeline, fmt: str, rate: float, *, source: Path, render: Path
    ) -> None:
        self.timeline, self.fmt, self.rate = timeline, fmt, rate
        self.source, self.render = source, render

    def lay_out(self, draft: Draft, uploaded: Uploaded) -> list[str]:
        """Fill the timeline's tracks; what the format or the draft leaves out."""
        import opentimelineio as otio

        rate = self.rate
        self.played = otio.schema.ExternalReference(
            target_url=self.render.resolve().as_uri(),
            available_range=_range(0, round(draft.duration * rate), rate),
        )
        known = uploaded.duration_ms
        self.original = otio.schema.ExternalReference(
            target_url=self.source.resolve().as_uri(),
            available_range=_range(0, _frame(known, rate), rate) if known else None,
        )
        pieces = cloudcut.picture(draft, uploaded)
        video = self.timeline.video_tracks()[0]
        for piece in pieces:
            if self._frames(piece)[1] > 0:
                video.append(self._clip(piece))
        left: list[str] = []
        made = [name for name in cloudcut.generated(pieces) if name != "the render"]
        if not any(piece.from_source for piece in pieces):
            left.append(
                "the cloud's cuts (a NemoVideo edit whose draft names no stretch of the"
                " upload): the timeline plays the rendered video"
            )
        elif made:
            left.append(
                f"the cloud's generated media ({', '.join(made)}): not files here, their"
                " clips play the rendered video"
            )
        styles = (track_of(draft, VIDEO_TRACK) or {}).get("m", {}).get("effects")
        if isinstance(styles, list) and styles:
            left.append("the cloud's effects: " + ", ".join(str(item) for item in styles))
        if self.fmt == "edl":
            return left
        if any(piece.from_source for piece in pieces):
            self._track("Source audio", [piece for piece in pieces if piece.from_source])
        for kind, track, sound in cloudcut.sounds(draft, uploaded):
            left += self._sound(kind, track, sound)
        return left

    def _frames(self, piece: cloudcut.Piece) -> tuple[int, int]:
        """Where `piece` starts in the output, and how long, in whole frames (rounded at
        both ends, so clips laid end to end never drift)."""
        first = _frame(piece.at, self.rate)
        return first, _frame(piece.at + piece.duration, self.rate) - first

    def _clip(self, piece: cloudcut.Piece) -> otio.schema.Clip:
        import opentimelineio as otio

        first, count = self._frames(piece)
        if piece.from_source:
            start, reference, name = _frame(piece.start, self.rate), self.original, self.source.name
        else:
            start, reference = first, self.played
            name = self.render.name if piece.name == "the render" else f"{piece.name} (render)"
        return otio.schema.Clip(
            name=name,
            media_reference=reference.clone(),
            source_range=_range(start, count, self.rate),
        )

    def _track(self, name: str, pieces: Sequence[cloudcut.Piece]) -> otio.schema.Track:
        """An audio track of `pieces` at their places, silence between them."""
        import opentimelineio as otio

        track = otio.schema.Track(name=name, kind=otio.schema.TrackKind.Audio)
        position = 0
        for piece in pieces:
            first, count = self._frames(piece)
            if count <= 0 or first < position:
                continue
            if first > position:
                track.append(otio.schema.Gap(source_range=_range(0, first - position, self.rate)))
            track.append(self._clip(piece))
            position = first + count
        self.timeline.tracks.append(track)
        return track

    def _sound(self, kind: str, track: Track, pieces: list[cloudcut.Piece]) -> list[str]:
        """An audio track of the draft (music, a voice-over...), with its level."""

        laid = self._track("Music" if kind == "music" else kind.capitalize(), pieces)
        metadata = track.get("m", {})
        what = str(metadata.get("source") or metadata.get("name") or kind)
        left = []
        if not all(piece.from_source for piece in pieces):
            left.append(
                f"the cloud's {kind} ({what}): not a file here, its clip plays the rendered"
                " video's sound, which mixes it with the source's"
            )
        volume = metadata.get("volume")
        if not isinstance(volume, int | float) or volume == 1.0:
            return left
        steady = {"0000000": round(20 * math.log10(max(float(volume), 1e-5)), 2)}
        said: list[str] = []
        for clip in laid.find_clips():
            said = levels.set_level(clip, self.fmt, what=kind, volume=volume, keyframes=steady)
        return left + said


def _text_items(draft: Draft, *, captions: bool) -> list[TrackSegment]:
    return [
        item
        for track in draft.tracks
        if track.get("tt") == TEXT_TRACK
        and (track.get("m", {}).get("kind") == "captions") == captions
        for item in track.get("sg", [])
        if "at" in item and "d" in item
    ]


def _texts(timeline: otio.schema.Timeline, draft: Draft, fmt: str, rate: float) -> list[str]:
    """Titles as text generator clips (or markers), captions as markers."""
    import opentimelineio as otio

    titles = _text_items(draft, captions=False)
    captions = _text_items(draft, captions=True)
    if fmt == "edl":
        return []
    markers = [("caption", item) for item in captions]
    if titles and fmt in {"otio", "xml"}:
        track = otio.schema.Track(name="Titles", kind=otio.schema.TrackKind.Video)
        position = 0
        for item in titles:
            first, count = _frame(item["at"], rate), max(1, _frame(item["d"], rate))
            if first < position:
                markers.append(("title", item))  # overlapping titles: markers
                continue
            if first > position:
                track.append(otio.schema.Gap(source_range=_range(0, first - position, rate)))
            track.append(_title(item, count, rate))
            position = first + count
        timeline.tracks.append(track)
    else:
        markers += [("title", item) for item in titles]
    video = timeline.video_tracks()[0]
    clips = list(video.find_clips())
    for kind, item in markers:
        marked = _range(_frame(item["at"], rate), _frame(item["d"], rate), rate)
        marker = otio.schema.Marker(name=f"{kind}: {item.get('text', '')}", marked_range=marked)
        if fmt in {"otio", "kdenlive"}:
            timeline.tracks.markers.append(marker)  # Kdenlive: the sequence's guides
            continue
        # FCP X and FCP 7 write markers on clips only: on the clip playing then, in its time
        for clip in clips:
            place = clip.range_in_parent()
            if place.contains(marked.start_time) or clip is clips[-1]:
                offset = marked.start_time - place.start_time
                marker.marked_range = otio.opentime.TimeRange(
                    clip.source_range.start_time + offset, marked.duration
                )
                clip.markers.append(marker)
                break
    left = []
    if titles and fmt in {"fcpxml", "kdenlive"}:
        left.append("titles as text clips (they are markers)")
    if titles:
        left.append("the titles' position and size")
    return left


def _title(item: TrackSegment, count: int, rate: float) -> otio.schema.Clip:
    import opentimelineio as otio

    text = str(item.get("text", ""))
    reference = otio.schema.GeneratorReference(
        name=text,
        generator_kind="Text",
        parameters={"text": text, "position": item.get("position", "center")},
        available_range=_range(0, count, rate),
    )
    # FCP 7's Text generator, so Premiere and Resolve make it a title
    reference.metadata["fcp_xml"] = {
        "effecttype": "generator",
        "mediatype": "video",
        "effectcategory": "Text",
    }
    return otio.schema.Clip(
        name=text, media_reference=reference, source_range=_range(0, count, rate)
    )


def _fcpx_note(video: otio.schema.Track, left_out: Sequence[str]) -> None:
    """FCP X keeps no timeline metadata: the left-out list goes in the first clip's note."""
    clips = list(video.find_clips())
    if not clips or not left_out:
        return
    reference = clips[0].media_reference
    note = "nemowatch left out: " + "; ".join(left_out)
    reference.metadata["fcpx"] = {"note": note}
