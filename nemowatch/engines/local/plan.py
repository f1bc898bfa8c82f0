"""The local engine's planner: which parts of the source to keep, as a Draft. Pure.

Silences become cuts: each silence gives up `margin` seconds on both sides (so speech is
never clipped), and what is left of it is cut if it is at least `min_cut` long. A silence
that touches the start or the end of the source is cut right to that edge, since there is
no speech on that side to protect. Kept segments are snapped to the video's frame grid:
video can only be cut between frames, and audio cut at the same instants stays in sync.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from nemowatch.engines.base import Draft
from nemowatch.engines.local.analysis import Silence
from nemowatch.rules import SilenceCut

VIDEO_TRACK = 0
AUDIO_TRACK = 1

# A silence this close to the start or end of the source touches it: decoders and the
# silence detector place stream edges a few milliseconds apart.
_EDGE_TOLERANCE = 0.05


@dataclass(frozen=True)
class Segment:
    """A stretch of the source to keep, in seconds."""

    start: float
    end: float

    @property
    def duration(self) -> float:
        return self.end - self.start


def kept_segments(
    duration: float, silences: Sequence[Silence], cut: SilenceCut, fps: float | None
) -> list[Segment]:
    """The parts of a `duration`-long source left after cutting `silences` as `cut` says."""
    cuts: list[Segment] = []
    for silence in sorted(silences, key=lambda silence: silence.start):
        start = 0.0 if silence.start <= _EDGE_TOLERANCE else silence.start + cut.margin
        end = duration if silence.end >= duration - _EDGE_TOLERANCE else silence.end - cut.margin
        start, end = max(0.0, start), min(duration, end)
        if end - start < max(cut.min_cut, 1e-9):
            continue  # too short to be worth a cut (or nothing left after the margins)
        if cuts and start <= cuts[-1].end:
            cuts[-1] = Segment(cuts[-1].start, max(cuts[-1].end, end))
        else:
            cuts.append(Segment(start, end))
    kept: list[Segment] = []
    position = 0.0
    for removed in [*cuts, Segment(duration, duration)]:
        start = snap(position, fps, duration)
        end = snap(removed.start, fps, duration)
        if end > start:
            kept.append(Segment(start, end))
        position = removed.end
    return kept


def snap(time: float, fps: float | None, duration: float) -> float:
    """`time` moved to the nearest frame boundary (and not past the end of the source)."""
    if fps is None or fps <= 0:
        return min(time, duration)
    return min(round(time * fps) / fps, duration)


def draft_from_segments(
    segments: Sequence[Segment],
    *,
    source_name: str,
    source_duration: float,
    width: int | None,
    height: int | None,
    fps: float | None,
    has_audio: bool,
) -> Draft:
    """A timeline that plays `segments` of the source back to back.

    Each segment `{"s", "e"}` is its place in the source and `"at"` its place in the
    result, all in milliseconds; the audio track (when the source has audio) mirrors the
    video track.
    """
    timeline: list[dict[str, Any]] = []
    position = 0
    for segment in segments:
        start_ms, end_ms = to_milliseconds(segment.start), to_milliseconds(segment.end)
        timeline.append({"s": start_ms, "e": end_ms, "at": position})
        position += end_ms - start_ms
    tracks: list[dict[str, Any]] = [{"tt": VIDEO_TRACK, "sg": timeline}]
    if has_audio:
        tracks.append({"tt": AUDIO_TRACK, "sg": [dict(segment) for segment in timeline]})
    metadata = {
        "width": width,
        "height": height,
        "fps": fps,
        "source": source_name,
        "source_duration_ms": to_milliseconds(source_duration),
    }
    return Draft(tracks=tuple(tracks), duration_ms=position, metadata=metadata)


def segments_of(draft: Draft) -> list[Segment]:
    """The source segments a draft's video track keeps, in seconds, on the frame grid."""
    fps = draft.metadata.get("fps")
    source_duration = draft.metadata.get("source_duration_ms")
    limit = source_duration / 1000 if source_duration is not None else float("inf")
    video = next((track for track in draft.tracks if track.get("tt") == VIDEO_TRACK), None)
    if video is None:
        return []
    # Milliseconds cannot hold every frame boundary (1/30 s): snap them back to the grid.
    return [
        Segment(snap(item["s"] / 1000, fps, limit), snap(item["e"] / 1000, fps, limit))
        for item in video.get("sg", [])
    ]


def to_milliseconds(seconds: float) -> int:
    return round(seconds * 1000)
