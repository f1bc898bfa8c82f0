"""Reading silencedetect's report, and planning which segments of the source to keep."""

from __future__ import annotations

import pytest

from nemowatch.engines.base import Draft
from nemowatch.engines.local.analysis import Silence, parse_silencedetect, shortest_silence
from nemowatch.engines.local.plan import (
    Segment,
    draft_from_segments,
    kept_segments,
    segments_of,
)
from nemowatch.rules import SilenceCut

SILENCEDETECT_STDERR = """\
Input #0, mov,mp4,m4a,3gp,3g2,mj2, from 'clip.mp4':
  Duration: 00:00:10.00, start: 0.000000, bitrate: 361 kb/s
[silencedetect @ 0x7f2f3c001c00] silence_start: 1.999932
[silencedetect @ 0x7f2f3c001c00] silence_end: 4.000113 | silence_duration: 2.000181
[Parsed_silencedetect_0 @ 0x7f2f3c001c00] silence_start: 5.999909
[Parsed_silencedetect_0 @ 0x7f2f3c001c00] silence_end: 8.500113 | silence_duration: 2.500204
size=N/A time=00:00:10.00 bitrate=N/A speed= 657x
"""

NO_MARGIN = SilenceCut(margin=0.0, min_cut=0.2)


# silencedetect's report


def test_silencedetect_report_becomes_silences() -> None:
    assert parse_silencedetect(SILENCEDETECT_STDERR) == [
        Silence(1.999932, 4.000113),
        Silence(5.999909, 8.500113),
    ]


def test_a_silence_still_open_at_the_end_runs_to_the_duration() -> None:
    stderr = "[silencedetect @ 0x1] silence_start: 8.5\n"

    assert parse_silencedetect(stderr, duration=10.0) == [Silence(8.5, 10.0)]
    assert parse_silencedetect(stderr) == []


def test_a_negative_start_from_decoder_delay_is_clamped_to_zero() -> None:
    stderr = (
        "[silencedetect @ 0x1] silence_start: -0.0213\n"
        "[silencedetect @ 0x1] silence_end: 1.5 | silence_duration: 1.5213\n"
    )

    assert parse_silencedetect(stderr) == [Silence(0.0, 1.5)]


def test_only_silences_long_enough_to_survive_their_margins_are_detected() -> None:
    assert shortest_silence(SilenceCut(margin=0.2, min_cut=0.2)) == pytest.approx(0.6)


# kept segments


def test_without_silences_the_whole_source_is_kept() -> None:
    assert kept_segments(10.0, [], SilenceCut(), fps=25.0) == [Segment(0.0, 10.0)]


def test_each_silence_gives_up_its_margin_on_both_sides() -> None:
    segments = kept_segments(10.0, [Silence(2.0, 4.0)], SilenceCut(margin=0.2), fps=25.0)

    assert segments == [Segment(0.0, 2.2), Segment(3.8, 10.0)]


def test_silences_shorter_than_min_cut_after_margins_are_left_in() -> None:
    cut = SilenceCut(margin=0.2, min_cut=0.5)
    silences = [Silence(2.0, 2.8), Silence(5.0, 6.0)]  # 0.4 s and 0.6 s after margins

    assert kept_segments(10.0, silences, cut, fps=25.0) == [Segment(0.0, 5.2), Segment(5.8, 10.0)]


def test_silences_at_the_edges_are_cut_right_to_the_edge() -> None:
    silences = [Silence(0.0, 1.6), Silence(8.0, 10.0)]

    segments = kept_segments(10.0, silences, SilenceCut(margin=0.2), fps=25.0)

    assert segments == [Segment(1.4, 8.2)]


def test_overlapping_silences_merge_into_one_cut() -> None:
    silences = [Silence(2.0, 4.0), Silence(3.5, 5.0)]

    assert kept_segments(10.0, silences, NO_MARGIN, fps=25.0) == [
        Segment(0.0, 2.0),
        Segment(5.0, 10.0),
    ]


def test_a_source_that_is_all_silence_keeps_nothing() -> None:
    assert kept_segments(10.0, [Silence(0.0, 10.0)], SilenceCut(), fps=25.0) == []


def test_segment_edges_snap_to_the_nearest_frame_boundary() -> None:
    segments = kept_segments(10.0, [Silence(2.01, 4.04)], NO_MARGIN, fps=30.0)

    assert segments == [Segment(0.0, 60 / 30), Segment(121 / 30, 10.0)]


def test_without_a_frame_rate_edges_are_kept_as_detected() -> None:
    segments = kept_segments(10.0, [Silence(2.01, 4.05)], NO_MARGIN, fps=None)

    assert segments == [Segment(0.0, 2.01), Segment(4.05, 10.0)]


# the draft


def test_the_draft_lays_kept_segments_end_to_end_on_video_and_audio_tracks() -> None:
    draft = draft_from_segments(
        [Segment(0.0, 2.2), Segment(3.8, 6.2)],
        source_name="talk.mp4",
        source_duration=10.0,
        width=160,
        height=120,
        fps=25.0,
        has_audio=True,
    )

    segments = [{"s": 0, "e": 2200, "at": 0}, {"s": 3800, "e": 6200, "at": 2200}]
    assert draft == Draft(
        tracks=({"tt": 0, "sg": segments}, {"tt": 1, "sg": segments}),
        duration_ms=4600,
        metadata={
            "width": 160,
            "height": 120,
            "fps": 25.0,
            "source": "talk.mp4",
            "source_duration_ms": 10000,
        },
    )


def test_a_source_without_audio_gets_no_audio_track() -> None:
    draft = draft_from_segments(
        [Segment(0.0, 2.0)],
        source_name="silent.mp4",
        source_duration=2.0,
        width=160,
        height=120,
        fps=25.0,
        has_audio=False,
    )

    assert [track["tt"] for track in draft.tracks] == [0]


def test_segments_read_back_from_a_stored_draft_are_on_the_frame_grid_again() -> None:
    fps = 30000 / 1001  # NTSC: no frame boundary is a whole millisecond
    original = [Segment(31 * 1001 / 30000, 95 * 1001 / 30000)]
    draft = draft_from_segments(
        original,
        source_name="ntsc.mp4",
        source_duration=10.0,
        width=720,
        height=480,
        fps=fps,
        has_audio=True,
    )

    restored = segments_of(Draft.from_json(draft.to_json()))

    assert restored == original
