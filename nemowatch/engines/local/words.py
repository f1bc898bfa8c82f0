"""Spoken words on the edit's timelines. Pure.

- `filler_cuts`: where the fillers ("um", "uh", 嗯 ...) are, as stretches of the source to
  cut. A filler's cut reaches into the pauses around it (a filler usually sits in one, and
  the model's word times are approximate by a tenth of a second or two), never into the
  words before and after it.
- `without`: kept segments minus such stretches, on the frame grid (the cut machinery the
  silence cut uses; the render joins what is left with the same micro-fades).
- `on_output`: the words that survive the edit, timed on the output (after cuts and speed).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from nemowatch.engines.local.analysis import Segment, snap
from nemowatch.engines.local.speech import Word

FILLER_REACH = 0.3  # seconds a filler's cut may reach beyond the model's times, each side
MIN_FILLER_CUT = 0.05  # seconds: a shorter cut is left out


def is_filler(word: Word, fillers: Iterable[str]) -> bool:
    bare = word.bare
    return bool(bare) and bare in {filler.lower() for filler in fillers}


def filler_cuts(words: Sequence[Word], fillers: Iterable[str]) -> list[Segment]:
    """The stretches of the source to cut to remove each filler word, in order, merged."""
    fillers = tuple(fillers)
    cuts: list[Segment] = []
    for index, word in enumerate(words):
        if not is_filler(word, fillers):
            continue
        before = _neighbour(words, index, -1, fillers)
        after = _neighbour(words, index, 1, fillers)
        start = word.start - FILLER_REACH
        end = word.end + FILLER_REACH
        if before is not None:
            start = max(start, before.end)
        if after is not None:
            end = min(end, after.start)
        start, end = max(0.0, min(start, word.start)), max(end, word.end)
        if before is not None and start < before.end:
            start = before.end  # the model gave overlapping times: keep the word before
        if after is not None and end > after.start:
            end = after.start
        if end - start < MIN_FILLER_CUT:
            continue
        if cuts and start <= cuts[-1].end:
            cuts[-1] = Segment(cuts[-1].start, max(cuts[-1].end, end))
        else:
            cuts.append(Segment(start, end))
    return cuts


def without(
    segments: Sequence[Segment], cuts: Sequence[Segment], *, fps: float | None, duration: float
) -> list[Segment]:
    """`segments` with every stretch of `cuts` taken out (edges on the frame grid)."""
    kept: list[Segment] = []
    for segment in segments:
        position = segment.start
        for cut in cuts:
            if cut.end <= position or cut.start >= segment.end:
                continue
            end = snap(max(position, cut.start), fps, duration)
            if end > position:
                kept.append(Segment(position, end))
            position = max(position, snap(min(cut.end, segment.end), fps, duration))
        if segment.end > position:
            kept.append(Segment(position, segment.end))
    return [piece for piece in kept if piece.end - piece.start > 1e-6]


def on_output(
    words: Sequence[Word],
    segments: Sequence[Segment],
    *,
    speed: float = 1.0,
    leave_out: Iterable[str] = (),
) -> list[Word]:
    """The words whose middle the edit keeps, timed in output seconds; `leave_out`: words
    (fillers) not to show even where they were kept."""
    leave = tuple(leave_out)
    placed: list[Word] = []
    offsets: list[float] = []
    total = 0.0
    for segment in segments:
        offsets.append(total)
        total += (segment.end - segment.start) / speed
    for word in words:
        if leave and is_filler(word, leave):
            continue
        middle = (word.start + word.end) / 2
        for segment, offset in zip(segments, offsets, strict=True):
            if segment.start <= middle < segment.end:
                start = offset + (max(word.start, segment.start) - segment.start) / speed
                end = offset + (min(word.end, segment.end) - segment.start) / speed
                placed.append(Word(round(start, 3), round(end, 3), word.text, word.probability))
                break
    return placed


def _neighbour(
    words: Sequence[Word], index: int, step: int, fillers: tuple[str, ...]
) -> Word | None:
    """The nearest word before (step -1) or after (step 1) `index` that is not a filler."""
    position = index + step
    while 0 <= position < len(words):
        if not is_filler(words[position], fillers):
            return words[position]
        position += step
    return None
