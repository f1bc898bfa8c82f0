"""Choosing a highlight reel: the best phrases of the material that fit a length. Pure.

The material (what trim and silence cutting kept) is split into pieces at the silences:
each piece is one phrase with the silence margin kept on both sides, so a reel never cuts
into a phrase. Each piece is scored

    loudness + scene + opening

- loudness: the piece's mean speech loudness against the median of the whole material,
  LOUDNESS_SPAN_DB to a point, clamped to ±1 (people raise their voice for what matters);
- scene: the highest scene-change score inside the piece, 0..1 (something happens);
- opening: OPENING_BONUS for the first piece (the start sets the context).

The best pieces that still fit the target are kept, by score; if that leaves the reel
shorter than FILL_GOAL of the target, kept pieces are swapped for longer ones that fit
while each swap fills at least SWAP_GAIN of the target more. The reel plays in source order.

A piece longer than the whole target is split at its quietest window that is at least
QUIETER_DB below its median (a breath between sentences), as often as needed; a part
with no such window is skipped. Only when that leaves nothing at all may a split fall at
any window no louder than the median (the quietest first), so that continuous sound such
as music still makes a reel. Without audio there is
no phrase to protect: the material is split at scene changes and into pieces of at most
SHOT_PIECE seconds.
"""

from __future__ import annotations

import bisect
import itertools
import math
import statistics
from collections.abc import Sequence

from nemowatch.engines.local.analysis import LOUDNESS_WINDOW, Analysis, Segment, snap
from nemowatch.rules import SilenceCut

LOUDNESS_SPAN_DB = 12.0  # this much louder than the median scores one point
OPENING_BONUS = 0.5
QUIETER_DB = 6.0  # how much quieter than its phrase a window must be to split it there
# Swap pieces while the reel is shorter than this share of the target: a reel that still
# falls short of it is "short", and its job says why (plan.short_reel).
FILL_GOAL = 0.95
# A swap gives up a better piece for a longer one: only worth it for this share of the target.
SWAP_GAIN = 0.02
SHOT_PIECE = 4.0  # seconds: the longest piece of a source without audio
SHOT_CHANGE = 0.3  # a scene score from which a key frame starts a new shot
MIN_PART = 1.0  # seconds: a split leaves at least this much on each side
_TOLERANCE = 1e-6  # seconds: sums of frame-snapped durations are off by rounding only


def choose_highlight(
    material: Sequence[Segment],
    phrases: Sequence[Segment],
    analysis: Analysis,
    *,
    target: float,
    fps: float | None,
    threshold_db: float = SilenceCut().threshold_db,
) -> list[Segment]:
    """The segments of `material` that make the best reel of at most `target` seconds.

    `phrases` are the speech runs with their margins (the source with its silences cut),
    `threshold_db` the loudness below which a window is not speech. All segments are in
    source seconds, on the frame grid, in order.
    """
    audible = bool(analysis.loudness)
    pieces = overlap(material, phrases if audible else [Segment(0.0, analysis.duration)])
    if audible:
        chosen = _highlight_of(pieces, analysis, target, fps, threshold_db, QUIETER_DB)
        if not chosen:
            # Every piece was too long and unbroken: a quiet window is the least bad cut.
            chosen = _highlight_of(pieces, analysis, target, fps, threshold_db, 0.0)
        return chosen
    shots = [
        part
        for piece in pieces
        for part in split_into_shots(
            piece, analysis.scenes, longest=min(target, SHOT_PIECE), fps=fps, end=analysis.duration
        )
    ]
    return _assemble(shots, score_pieces(shots, analysis, threshold_db), target)


def split_at_quiet(
    piece: Segment,
    loudness: Sequence[tuple[float, float]],
    *,
    target: float,
    quieter_db: float,
    fps: float | None,
    end: float,
) -> list[Segment]:
    """`piece` as parts of at most `target` seconds, split only in quiet windows.

    Each split falls in the middle of the quietest window (nearest the middle among
    equals) that is `quieter_db` below the piece's median window and leaves MIN_PART on
    both sides; parts that cannot be split so are left out. `loudness` is in time order.
    """
    if piece.duration <= target + _TOLERANCE:
        return [piece]
    starts = [start for start, _ in loudness]
    first = bisect.bisect_left(starts, piece.start)
    last = bisect.bisect_right(starts, piece.end - LOUDNESS_WINDOW)
    inside = loudness[first:last]
    if not inside:
        return []
    limit = statistics.median(level for _, level in inside) - quieter_db
    quiet = [
        (snap(start + LOUDNESS_WINDOW / 2, fps, end), level)
        for start, level in inside
        if level <= limit
    ]
    parts: list[Segment] = []
    pending = [piece]  # a stack, not recursion: a long piece may need thousands of splits
    while pending:
        part = pending.pop()
        if part.duration <= target + _TOLERANCE:
            parts.append(part)
            continue
        middle = (part.start + part.end) / 2
        candidates = [
            (level, abs(time - middle), time)
            for time, level in quiet
            if part.start + MIN_PART <= time <= part.end - MIN_PART
        ]
        if candidates:
            _, _, split = min(candidates)
            pending += [Segment(split, part.end), Segment(part.start, split)]
    return parts


def split_into_shots(
    piece: Segment,
    scenes: Sequence[tuple[float, float]],
    *,
    longest: float,
    fps: float | None,
    end: float,
) -> list[Segment]:
    """`piece` split at scene changes, then evenly into parts of at most `longest` seconds."""
    cuts = sorted(
        snap(time, fps, end)
        for time, score in scenes
        if score >= SHOT_CHANGE and piece.start + _TOLERANCE < time < piece.end - _TOLERANCE
    )
    edges = [piece.start, *cuts, piece.end]
    parts: list[Segment] = []
    for start, stop in itertools.pairwise(edges):
        count = max(1, math.ceil((stop - start) / longest - _TOLERANCE))
        inner = [
            snap(start + (stop - start) * index / count, fps, end) for index in range(1, count)
        ]
        bounds = [start, *inner, stop]
        parts += [
            Segment(left, right) for left, right in itertools.pairwise(bounds) if right > left
        ]
    return parts


def score_pieces(pieces: Sequence[Segment], analysis: Analysis, threshold_db: float) -> list[float]:
    """Each piece's score: loudness against the material, scene change, opening bonus.

    A loudness window counts for the piece holding its middle, and only as speech (above
    `threshold_db`); a scene score counts for the piece it falls in.
    """
    windows = sorted((start + LOUDNESS_WINDOW / 2, level) for start, level in analysis.loudness)
    middles = [middle for middle, _ in windows]
    scenes = sorted(analysis.scenes)
    scene_times = [time for time, _ in scenes]
    speech = [
        [
            level
            for _, level in windows[
                bisect.bisect_left(middles, piece.start) : bisect.bisect_left(middles, piece.end)
            ]
            if level > threshold_db
        ]
        for piece in pieces
    ]
    every_level = [level for levels in speech for level in levels]
    reference = statistics.median(every_level) if every_level else 0.0
    scores = []
    for index, piece in enumerate(pieces):
        loudness = 0.0
        if speech[index]:
            difference = statistics.fmean(speech[index]) - reference
            loudness = max(-1.0, min(1.0, difference / LOUDNESS_SPAN_DB))
        inside = scenes[
            bisect.bisect_left(scene_times, piece.start) : bisect.bisect_left(
                scene_times, piece.end
            )
        ]
        scene = max((score for _, score in inside), default=0.0)
        opening = OPENING_BONUS if index == 0 else 0.0
        scores.append(loudness + scene + opening)
    return scores


def select_pieces(durations: Sequence[float], scores: Sequence[float], target: float) -> list[int]:
    """The indices (ascending) of the pieces to keep: best first while they fit, then
    swaps for longer pieces while the total is short of FILL_GOAL of `target`.

    Among equal scores the earlier piece wins."""
    order = sorted(range(len(durations)), key=lambda index: (-scores[index], index))
    chosen: set[int] = set()
    total = 0.0
    for index in order:
        if total + durations[index] <= target + _TOLERANCE:
            chosen.add(index)
            total += durations[index]
    while total < FILL_GOAL * target - _TOLERANCE:
        # The longest piece left out that fits in place of each kept one: take the swap
        # that fills the most (the better score among equals).
        left_out = sorted(
            (durations[index], scores[index], index)
            for index in range(len(durations))
            if index not in chosen
        )
        lengths = [length for length, _, _ in left_out]
        best: tuple[float, float, int, int] | None = None
        for kept in chosen:
            room = target - total + durations[kept]
            position = bisect.bisect_right(lengths, room + _TOLERANCE) - 1
            if position < 0 or lengths[position] < durations[kept] + SWAP_GAIN * target:
                continue
            length, score, added = left_out[position]
            swap = (total - durations[kept] + length, score - scores[kept], kept, added)
            if best is None or swap[:2] > best[:2]:
                best = swap
        if best is None:
            break
        total, _, kept, added = best
        chosen.remove(kept)
        chosen.add(added)
    return sorted(chosen)


def _highlight_of(
    pieces: Sequence[Segment],
    analysis: Analysis,
    target: float,
    fps: float | None,
    threshold_db: float,
    quieter_db: float,
) -> list[Segment]:
    parts = [
        part
        for piece in pieces
        for part in split_at_quiet(
            piece,
            analysis.loudness,
            target=target,
            quieter_db=quieter_db,
            fps=fps,
            end=analysis.duration,
        )
    ]
    return _assemble(parts, score_pieces(parts, analysis, threshold_db), target)


def _assemble(pieces: Sequence[Segment], scores: Sequence[float], target: float) -> list[Segment]:
    """The selected pieces in source order, those that touch joined into one segment."""
    kept: list[Segment] = []
    for index in select_pieces([piece.duration for piece in pieces], scores, target):
        piece = pieces[index]
        if kept and piece.start <= kept[-1].end + _TOLERANCE:
            kept[-1] = Segment(kept[-1].start, piece.end)
        else:
            kept.append(piece)
    return kept


def overlap(material: Sequence[Segment], phrases: Sequence[Segment]) -> list[Segment]:
    """Where `material` and `phrases` overlap (both sorted and disjoint within themselves)."""
    pieces: list[Segment] = []
    phrase_index = 0
    for segment in material:
        while phrase_index < len(phrases) and phrases[phrase_index].end <= segment.start:
            phrase_index += 1
        index = phrase_index
        while index < len(phrases) and phrases[index].start < segment.end:
            start = max(segment.start, phrases[index].start)
            end = min(segment.end, phrases[index].end)
            if end - start > _TOLERANCE:
                pieces.append(Segment(start, end))
            index += 1
    return pieces
