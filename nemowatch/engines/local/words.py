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

from nemowatch.engines.local.analysis import Segment, Stretch, snap
from nemowatch.engines.local.speech import Word

FILLER_REACH = 0.3  # seconds a filler's cut may reach beyond the model's times, each side
MIN_FILLER_CUT = 0.05  # seconds: a shorter cut is left out


def is_filler(word: Word, fillers: Iterable[str]) -> bool:
    bare = word.bare
    return bool(bare) and bare in {filler.lower() for filler in fillers}


def filler_cuts(
    words: Sequence[Word],
    fillers: Iterable[str],
    *,
    pauses: Sequence[Stretch] = (),
    duration: float | None = None,
) -> list[Segment]:
    """The stretches of the source to cut to remove each filler word, in order, merged.

    With `pauses` (the quiet stretches of the source), a filler said on its own, between
    two pauses, is cut whole: from the middle of the pause before it to the middle of the
    pause after (the model's word times lag or lead by a few tenths of a second; the
    pauses are where the sound is). A filler run into other words is cut by its times,
    reaching no further than its neighbours'.
    """
    fillers = tuple(fillers)
    alone = _alone(words, fillers, pauses, duration)
    cuts: list[Segment] = []
    for index, word in enumerate(words):
        if not is_filler(word, fillers):
            continue
        if index in alone:
            _add(cuts, alone[index])
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
        if end - start >= MIN_FILLER_CUT:
            _add(cuts, Segment(start, end))
    return cuts


def _add(cuts: list[Segment], cut: Segment) -> None:
    if cuts and cut.start <= cuts[-1].end:
        cuts[-1] = Segment(cuts[-1].start, max(cuts[-1].end, cut.end))
    else:
        cuts.append(cut)


def _alone(
    words: Sequence[Word],
    fillers: tuple[str, ...],
    pauses: Sequence[Stretch],
    duration: float | None,
) -> dict[int, Segment]:
    """The fillers said on their own, by index, each with the stretch that removes it.

    The sound between the pauses comes in islands. Each word that is not a filler is
    placed in the island it overlaps most (or the nearest); a filler's islands are those
    that hold no such word and lie between the words said before and after it. The
    model's times may lag or lead the sound by a few tenths of a second: the order of the
    words does not.
    """
    if not pauses:
        return {}
    ordered = sorted(pauses, key=lambda pause: pause.start)
    end = duration if duration is not None else max((word.end for word in words), default=0.0)
    islands: list[tuple[Stretch | None, Segment, Stretch | None]] = []
    position, before = 0.0, None
    for pause in [*ordered, None]:
        stop = pause.start if pause is not None else end
        if stop > position:
            islands.append((before, Segment(position, stop), pause))
        if pause is not None:
            position, before = max(position, pause.end), pause
    held: set[int] = set()  # the islands that hold a word that is not a filler
    for word in words:
        if not is_filler(word, fillers) and islands:
            held.add(
                max(
                    range(len(islands)),
                    key=lambda at: (
                        _overlap(word, islands[at][1]),
                        -_distance(word, islands[at][1]),
                    ),
                )
            )
    alone: dict[int, Segment] = {}
    for index, word in enumerate(words):
        if not is_filler(word, fillers):
            continue
        before_word = _neighbour(words, index, -1, fillers)
        after_word = _neighbour(words, index, 1, fillers)
        low = _middle(before_word) if before_word is not None else -1.0
        high = _middle(after_word) if after_word is not None else float("inf")
        free = [
            at
            for at, (_, island, _) in enumerate(islands)
            if at not in held and low < (island.start + island.end) / 2 < high
        ]
        if not free:
            continue
        first_pause, _, _ = islands[free[0]]
        _, _, last_pause = islands[free[-1]]
        start = _middle(first_pause) if first_pause is not None else islands[free[0]][1].start
        stop = _middle(last_pause) if last_pause is not None else islands[free[-1]][1].end
        alone[index] = Segment(start, stop)
    return alone


def _middle(span: Stretch | Word) -> float:
    return (span.start + span.end) / 2


def _overlap(word: Word, island: Segment) -> float:
    return max(0.0, min(word.end, island.end) - max(word.start, island.start))


def _distance(word: Word, island: Segment) -> float:
    middle = (word.start + word.end) / 2
    return (
        0.0
        if island.start <= middle <= island.end
        else min(abs(middle - island.start), abs(middle - island.end))
    )


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
