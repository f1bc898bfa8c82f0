"""Choosing a highlight reel from synthetic analyses: pieces, scores, selection."""

from __future__ import annotations

from collections.abc import Sequence

from nemowatch.engines.local.analysis import SILENT_DB, Analysis, Segment, Silence
from nemowatch.engines.local.highlight import (
    OPENING_BONUS,
    choose_highlight,
    score_pieces,
    select_pieces,
    split_at_quiet,
    split_into_shots,
)
from nemowatch.engines.local.plan import kept_segments, plan_segments
from nemowatch.rules import EditSpec, SilenceCut, Trim


def loudness(
    duration: float, levels: Sequence[tuple[float, float, float]], quiet: float = SILENT_DB
) -> tuple[tuple[float, float], ...]:
    """Half-second windows over `duration`: `level` dB inside each (start, end, level)."""
    windows = []
    for index in range(round(duration / 0.5)):
        start = index * 0.5
        level = next((decibels for low, high, decibels in levels if low <= start < high), quiet)
        windows.append((start, level))
    return tuple(windows)


# A 40 s talk: four 8 s phrases, 1 s apart, of differing loudness, then 5 s of silence.
TALK = Analysis(
    duration=40.0,
    silences=(Silence(8.0, 9.0), Silence(17.0, 18.0), Silence(26.0, 27.0), Silence(35.0, 40.0)),
    loudness=loudness(40.0, [(0, 8, -20.0), (9, 17, -30.0), (18, 26, -13.0), (27, 35, -30.0)]),
)


# selecting pieces


def test_the_best_scoring_pieces_are_kept_while_they_fit() -> None:
    assert select_pieces([5.0, 5.0, 5.0, 5.0], [0.0, 3.0, 2.0, 1.0], target=10.0) == [1, 2]


def test_a_piece_that_no_longer_fits_gives_way_to_a_shorter_one() -> None:
    assert select_pieces([6.0, 6.0, 3.0], [3.0, 2.0, 1.0], target=10.0) == [0, 2]


def test_among_equal_scores_the_earlier_piece_is_kept() -> None:
    assert select_pieces([4.0, 4.0, 4.0], [1.0, 1.0, 1.0], target=8.0) == [0, 1]


def test_a_reel_well_short_of_its_target_swaps_a_piece_for_a_longer_one() -> None:
    # The best piece alone fills half the target; the longer one fills 90 %.
    assert select_pieces([5.0, 9.0], [2.0, 1.0], target=10.0) == [1]


def test_a_reel_nearly_full_keeps_its_best_pieces() -> None:
    assert select_pieces([9.6, 10.0], [2.0, 1.0], target=10.0) == [0]


def test_a_reel_short_of_95_percent_takes_a_longer_piece_that_fills_it() -> None:
    # within 5 % of the length asked, when the material allows
    assert select_pieces([8.6, 10.0], [2.0, 1.0], target=10.0) == [1]


def test_a_swap_that_barely_fills_more_is_not_worth_a_better_piece() -> None:
    assert select_pieces([5.0, 5.1], [2.0, 1.0], target=10.0) == [0]


def test_nothing_is_kept_when_every_piece_is_longer_than_the_target() -> None:
    assert select_pieces([12.0, 15.0], [1.0, 2.0], target=10.0) == []


# scoring pieces


def test_louder_speech_scores_higher_against_the_median_of_the_material() -> None:
    pieces = [Segment(0.0, 8.0), Segment(9.0, 17.0), Segment(18.0, 26.0), Segment(27.0, 35.0)]
    analysis = Analysis(
        duration=40.0,
        loudness=loudness(40.0, [(0, 8, -26.0), (9, 17, -20.0), (18, 26, -26.0), (27, 35, -32.0)]),
    )

    # median -26 dB; 12 dB louder than it is one point
    assert score_pieces(pieces, analysis, threshold_db=-40.0) == [OPENING_BONUS, 0.5, 0.0, -0.5]


def test_loudness_counts_at_most_one_point_either_way() -> None:
    pieces = [Segment(0.0, 2.0), Segment(2.0, 4.0), Segment(4.0, 6.0)]
    analysis = Analysis(
        duration=6.0, loudness=loudness(6.0, [(0, 2, -30), (2, 4, -50), (4, 6, -5)])
    )

    assert score_pieces(pieces, analysis, threshold_db=-60.0) == [OPENING_BONUS, -1.0, 1.0]


def test_silent_windows_do_not_lower_a_pieces_loudness() -> None:
    pieces = [Segment(0.0, 4.0), Segment(4.0, 8.0)]
    # the first piece is half silence, but its speech is as loud as the second's
    analysis = Analysis(duration=8.0, loudness=loudness(8.0, [(0, 2, -20), (4, 8, -20)]))

    assert score_pieces(pieces, analysis, threshold_db=-28.0) == [OPENING_BONUS, 0.0]


def test_a_scene_change_inside_a_piece_adds_its_score() -> None:
    pieces = [Segment(0.0, 4.0), Segment(4.0, 8.0), Segment(8.0, 12.0)]
    analysis = Analysis(
        duration=12.0,
        loudness=loudness(12.0, [(0, 12, -20)]),
        scenes=((1.0, 0.25), (5.0, 0.5), (6.0, 0.75)),
    )

    assert score_pieces(pieces, analysis, threshold_db=-28.0) == [OPENING_BONUS + 0.25, 0.75, 0.0]


# splitting what is too long


def test_a_piece_that_fits_is_kept_whole() -> None:
    piece = Segment(0.0, 10.0)

    assert split_at_quiet(
        piece, loudness(10.0, [(0, 10, -20)]), target=12.0, quieter_db=6.0, fps=None, end=10.0
    ) == [piece]


def test_a_phrase_longer_than_the_target_is_split_at_its_quietest_window() -> None:
    windows = loudness(20.0, [(8, 8.5, -35), (14, 14.5, -30), (0, 20, -20)])

    parts = split_at_quiet(
        Segment(0.0, 20.0), windows, target=12.0, quieter_db=6.0, fps=None, end=20.0
    )

    assert parts == [Segment(0.0, 8.25), Segment(8.25, 20.0)]


def test_a_part_still_too_long_without_a_quiet_window_is_left_out() -> None:
    windows = loudness(30.0, [(10, 10.5, -35), (0, 30, -20)])

    parts = split_at_quiet(
        Segment(0.0, 30.0), windows, target=12.0, quieter_db=6.0, fps=None, end=30.0
    )

    assert parts == [Segment(0.0, 10.25)]


def test_a_dip_smaller_than_quieter_db_is_not_a_place_to_split() -> None:
    windows = loudness(30.0, [(10, 10.5, -23), (0, 30, -20)])

    assert (
        split_at_quiet(Segment(0.0, 30.0), windows, target=12.0, quieter_db=6.0, fps=None, end=30.0)
        == []
    )


def test_splits_land_on_the_frame_grid() -> None:
    windows = loudness(20.0, [(8, 8.5, -35), (0, 20, -20)])

    parts = split_at_quiet(
        Segment(0.0, 20.0), windows, target=12.0, quieter_db=6.0, fps=25.0, end=20.0
    )

    assert parts == [Segment(0.0, 8.24), Segment(8.24, 20.0)]


def test_without_audio_pieces_are_shots_no_longer_than_the_limit() -> None:
    scenes = ((3.0, 0.8), (6.0, 0.1))  # the second is too weak to be a new shot

    parts = split_into_shots(Segment(0.0, 10.0), scenes, longest=4.0, fps=None, end=10.0)

    assert parts == [Segment(0.0, 3.0), Segment(3.0, 6.5), Segment(6.5, 10.0)]


# the reel


def test_the_reel_keeps_the_best_phrases_whole_in_source_order() -> None:
    segments = plan_segments(duration=40.0, fps=25.0, spec=EditSpec(max_duration=20), analysis=TALK)

    # pieces are phrases with 0.2 s margins: the opening (8.2 s, bonus) and the loudest
    assert segments == [Segment(0.0, 8.2), Segment(17.8, 26.2)]


def test_the_target_is_the_reel_length_times_the_speed() -> None:
    spec = EditSpec(max_duration=10, speed=2.0)

    segments = plan_segments(duration=40.0, fps=25.0, spec=spec, analysis=TALK)

    assert segments == [Segment(0.0, 8.2), Segment(17.8, 26.2)]


def test_material_no_longer_than_the_target_is_left_alone() -> None:
    spec = EditSpec(max_duration=40)

    assert plan_segments(duration=40.0, fps=25.0, spec=spec, analysis=TALK) == [Segment(0.0, 40.0)]


def test_a_highlight_after_cutting_silences_chooses_among_the_kept_segments() -> None:
    spec = EditSpec(cut_silences=SilenceCut(), max_duration=20)

    segments = plan_segments(duration=40.0, fps=25.0, spec=spec, analysis=TALK)

    assert segments == [Segment(0.0, 8.2), Segment(17.8, 26.2)]


def test_a_highlight_only_chooses_inside_the_trim() -> None:
    spec = EditSpec(trim=Trim(start=9.0, end=35.0), max_duration=10)

    segments = plan_segments(duration=40.0, fps=25.0, spec=spec, analysis=TALK)

    # inside the trim, the loudest phrase beats the trim's opening one
    assert segments == [Segment(17.8, 26.2)]


def test_a_phrase_longer_than_the_target_without_a_quiet_window_is_skipped() -> None:
    analysis = Analysis(
        duration=30.0,
        silences=(Silence(20.0, 21.0),),
        loudness=loudness(30.0, [(0, 20, -20.0), (21, 30, -20.0)]),
    )

    segments = plan_segments(
        duration=30.0, fps=25.0, spec=EditSpec(max_duration=12), analysis=analysis
    )

    assert segments == [Segment(20.8, 30.0)]


def test_unbroken_sound_is_cut_at_its_quietest_window_rather_than_left_empty() -> None:
    # steady sound with one slight dip: no window is QUIETER_DB below the rest
    analysis = Analysis(duration=30.0, loudness=loudness(30.0, [(14, 14.5, -22.0), (0, 30, -20.0)]))

    segments = plan_segments(
        duration=30.0, fps=25.0, spec=EditSpec(max_duration=16), analysis=analysis
    )

    # the longer side of the dip: 15.76 s of 16 (the other, 14.24 s, is short of 95 %)
    assert segments == [Segment(14.24, 30.0)]


def test_a_source_without_audio_becomes_a_reel_of_shots() -> None:
    analysis = Analysis(duration=20.0, scenes=((6.0, 0.9), (12.0, 0.4)))

    segments = plan_segments(
        duration=20.0, fps=25.0, spec=EditSpec(max_duration=8), analysis=analysis
    )

    # shots 0-6, 6-12, 12-20 in pieces of 3, 3, 3, 3, 4 and 4 s: the two best (each
    # starting with a scene change) fill 7 s, short of 95 % of 8; the last shot fills it
    assert segments == [Segment(12.0, 20.0)]


def test_every_edge_of_the_reel_lies_in_a_silence() -> None:
    phrases = kept_segments(40.0, TALK.silences, SilenceCut(), fps=25.0)

    segments = choose_highlight(phrases, phrases, TALK, target=18.0, fps=25.0)

    silences = [*TALK.silences, Silence(0.0, 0.0)]
    for segment in segments:
        for edge in (segment.start, segment.end):
            assert any(silence.start <= edge <= silence.end for silence in silences)
