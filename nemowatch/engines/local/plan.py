"""The local engine's planner: which parts of the source to keep, as a Draft. Pure.

`plan_segments` applies an edit in this order: trim (keep only part of the source), cut
silences, cut filler words (words.py), then a highlight reel (`highlight`) when what is
left is longer than the reel may be.

Silences become cuts: each silence gives up `margin` seconds on both sides (so speech is
never clipped), and what is left of it is cut if it is at least `min_cut` long. A silence
that touches the start or the end of the source (or of the trim) is cut right to that
edge, since there is no speech on that side to protect. Kept segments are snapped to the
video's frame grid: video can only be cut between frames, and audio cut at the same
instants stays in sync.

A reel more than SHORT_REEL shorter than asked (the material ran out) is explained by
`short_reel`, with numbers: the local engine keeps that sentence in the draft's warnings.
"""

from __future__ import annotations

from collections.abc import Sequence

from nemowatch.engines.base import AUDIO_TRACK, VIDEO_TRACK, Draft, JSONObject, Track, TrackSegment
from nemowatch.engines.local.analysis import Analysis, Silence
from nemowatch.engines.local.analysis import Segment as Segment  # re-exported: part of the plan
from nemowatch.engines.local.analysis import snap as snap  # re-exported: part of the plan
from nemowatch.engines.local.highlight import FILL_GOAL, choose_highlight, overlap
from nemowatch.engines.local.timeline import TimelineFacts, track_of
from nemowatch.engines.local.words import filler_cuts, without
from nemowatch.rules import EditSpec, SilenceCut, Trim

# A silence this close to the start or end of the source touches it: decoders and the
# silence detector place stream edges a few milliseconds apart.
_EDGE_TOLERANCE = 0.05

# Durations of frame-snapped segments add up with rounding errors only.
_TOLERANCE = 1e-6

SHORT_REEL = 1 - FILL_GOAL  # a reel this share shorter than asked, or more, is said to be short


def plan_segments(
    *, duration: float, fps: float | None, spec: EditSpec, analysis: Analysis
) -> list[Segment]:
    """The parts of a `duration`-long source that `spec` keeps, in source order.

    Trim, then cut silences (if `spec.cut_silences`), then choose a highlight (if
    `spec.max_duration` and what is left would play longer, at `spec.speed`). Empty when
    nothing is left (a trim past the end, a source that is all silence).
    """
    segments = material_of(duration=duration, fps=fps, spec=spec, analysis=analysis)
    if spec.max_duration is None:
        return segments
    target = spec.max_duration * (spec.speed or 1.0)  # in source seconds
    if sum(segment.duration for segment in segments) <= target + _TOLERANCE:
        return segments
    highlight_cut = spec.cut_silences or SilenceCut()
    return choose_highlight(
        segments,
        kept_segments(duration, analysis.silences, highlight_cut, fps),
        analysis,
        target=target,
        fps=fps,
        threshold_db=highlight_cut.threshold_db,
    )


def material_of(
    *, duration: float, fps: float | None, spec: EditSpec, analysis: Analysis
) -> list[Segment]:
    """What the trim, the silence cut and the filler cut of `spec` keep: a highlight is
    chosen from it."""
    window = trimmed(duration, spec.trim, fps)
    if window is None:
        return []
    kept = [window]
    if spec.cut_silences is not None:
        kept = kept_between(window, duration, analysis.silences, spec.cut_silences, fps)
    if spec.remove_fillers is not None and analysis.transcript is not None:
        fillers = filler_cuts(
            analysis.transcript.words,
            spec.remove_fillers.words,
            pauses=analysis.pauses,
            duration=duration,
        )
        kept = without(kept, fillers, fps=fps, duration=duration)
    return kept


def short_reel(
    segments: Sequence[Segment],
    *,
    duration: float,
    fps: float | None,
    spec: EditSpec,
    analysis: Analysis,
) -> str | None:
    """Why the reel that plays `segments` is shorter than `spec.max_duration` (by SHORT_REEL
    or more), in words with numbers, all in output seconds: "the reel lasts 42.0 s: 42.0 s
    of speech left after cutting silences; asked 60 s". None when it is not short, or no
    reel was asked for.
    """
    if spec.max_duration is None:
        return None
    speed = spec.speed or 1.0
    asked = spec.max_duration
    lasts = sum(segment.duration for segment in segments) / speed
    if lasts >= (1 - SHORT_REEL) * asked - _TOLERANCE:
        return None
    material = material_of(duration=duration, fps=fps, spec=spec, analysis=analysis)
    left = sum(segment.duration for segment in material) / speed
    if left <= asked + _TOLERANCE:  # the reel is all there was
        if spec.cut_silences is not None:
            why = f"{left:.1f} s of speech left after cutting silences"
        elif spec.trim is not None:
            why = f"{left:.1f} s left after the trim"
        else:
            why = f"the source lasts {left:.1f} s"
    else:
        # what the highlight chose from: the phrases (with their margins) in the material
        cut = spec.cut_silences or SilenceCut()
        phrases = kept_segments(duration, analysis.silences, cut, fps)
        spoken = sum(piece.duration for piece in overlap(material, phrases)) / speed
        if analysis.loudness and spoken <= asked + _TOLERANCE:
            where = "after the trim" if spec.trim is not None else "in the source"
            why = f"{spoken:.1f} s of speech {where}"
        else:
            why = f"whole phrases fill only {lasts:.1f} s (a reel never cuts into a phrase)"
    at = f" at {speed:g}x speed" if speed != 1.0 else ""
    return f"the reel lasts {lasts:.1f} s: {why}{at}; asked {asked:g} s"


def trimmed(duration: float, trim: Trim | None, fps: float | None) -> Segment | None:
    """The part of the source a trim keeps, on the frame grid; None if it keeps nothing."""
    if trim is None:
        return Segment(0.0, duration)
    start, end = trim_window(duration, trim)
    start, end = snap(start, fps, duration), snap(end, fps, duration)
    return Segment(start, end) if end > start else None


def trim_window(duration: float, trim: Trim) -> tuple[float, float]:
    """The (start, end) a trim keeps of a `duration`-long source, in source seconds, before
    snapping to frames; `cut_end` and `last` count from the end. The end may be at or before
    the start: the trim keeps nothing."""
    if trim.last is not None:
        return max(0.0, duration - trim.last), duration
    start = min(trim.start, duration)
    end = duration if trim.end is None else min(trim.end, duration)
    if trim.cut_end is not None:
        end = duration - trim.cut_end
    return start, end


def empty_trim(duration: float, trim: Trim | None) -> str | None:
    """Why `trim` keeps nothing of a `duration`-long source, in words; None when it keeps
    something (or there is no trim)."""
    if trim is None:
        return None
    start, end = trim_window(duration, trim)
    if end - start > _TOLERANCE:
        return None
    if trim.cut_end is not None:
        asked = f"cuts the last {trim.cut_end:g} s"
        if trim.start:
            asked = f"starts at {trim.start:g} s and {asked}"
    elif trim.end is not None and trim.end <= trim.start:
        asked = f"ends at {trim.end:g} s, before its start at {trim.start:g} s"
    else:
        asked = f"starts at {trim.start:g} s"
    return f"the trim {asked}, but the source lasts only {duration:.1f} s"


def kept_segments(
    duration: float, silences: Sequence[Silence], cut: SilenceCut, fps: float | None
) -> list[Segment]:
    """The parts of a `duration`-long source left after cutting `silences` as `cut` says."""
    return kept_between(Segment(0.0, duration), duration, silences, cut, fps)


def kept_between(
    window: Segment,
    duration: float,
    silences: Sequence[Silence],
    cut: SilenceCut,
    fps: float | None,
) -> list[Segment]:
    """The parts of `window` (of a `duration`-long source) left after cutting `silences`.

    The window's edges count as the source's: a silence touching one is cut right to it.
    """
    cuts: list[Segment] = []
    for silence in sorted(silences, key=lambda silence: silence.start):
        if silence.end <= window.start or silence.start >= window.end:
            continue
        start = (
            window.start
            if silence.start <= window.start + _EDGE_TOLERANCE
            else silence.start + cut.margin
        )
        end = (
            window.end if silence.end >= window.end - _EDGE_TOLERANCE else silence.end - cut.margin
        )
        start, end = max(window.start, start), min(window.end, end)
        if end - start < max(cut.min_cut, 1e-9):
            continue  # too short to be worth a cut (or nothing left after the margins)
        if cuts and start <= cuts[-1].end:
            cuts[-1] = Segment(cuts[-1].start, max(cuts[-1].end, end))
        else:
            cuts.append(Segment(start, end))
    kept: list[Segment] = []
    position = window.start
    for removed in [*cuts, Segment(window.end, window.end)]:
        start = snap(position, fps, duration)
        end = snap(removed.start, fps, duration)
        if end > start:
            kept.append(Segment(start, end))
        position = removed.end
    return kept


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
    timeline: list[TrackSegment] = []
    position = 0
    for segment in segments:
        start_ms, end_ms = to_milliseconds(segment.start), to_milliseconds(segment.end)
        timeline.append({"s": start_ms, "e": end_ms, "at": position})
        position += end_ms - start_ms
    tracks: list[Track] = [{"tt": VIDEO_TRACK, "sg": timeline}]
    if has_audio:
        tracks.append({"tt": AUDIO_TRACK, "sg": [segment.copy() for segment in timeline]})
    metadata: JSONObject = {
        "width": width,
        "height": height,
        "fps": fps,
        "source": source_name,
        "source_duration_ms": to_milliseconds(source_duration),
    }
    return Draft(tracks=tuple(tracks), duration_ms=position, metadata=metadata)


def segments_of(draft: Draft) -> list[Segment]:
    """The source segments a draft's video track keeps, in seconds, on the frame grid."""
    facts = TimelineFacts.of(draft)
    fps = facts.fps
    limit = facts.source_end if facts.source_end is not None else float("inf")
    video = track_of(draft, VIDEO_TRACK)
    if video is None:
        return []
    # Milliseconds cannot hold every frame boundary (1/30 s): snap them back to the grid.
    return [
        Segment(snap(item["s"] / 1000, fps, limit), snap(item["e"] / 1000, fps, limit))
        for item in video.get("sg", [])
    ]


def to_milliseconds(seconds: float) -> int:
    return round(seconds * 1000)
