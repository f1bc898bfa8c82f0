"""Reading the analysis passes' reports, and planning which segments of the source to keep."""

from __future__ import annotations

from pathlib import Path

import pytest

from nemowatch.engines.base import Draft
from nemowatch.engines.local.analysis import (
    SILENT_DB,
    Analysis,
    Silence,
    audio_arguments,
    parse_loudness,
    parse_scene_scores,
    parse_silencedetect,
    scene_arguments,
    shortest_silence,
)
from nemowatch.engines.local.plan import (
    Segment,
    draft_from_segments,
    empty_trim,
    kept_segments,
    plan_segments,
    segments_of,
    short_reel,
)
from nemowatch.rules import EditSpec, SilenceCut, Trim

SILENCEDETECT_STDERR = """\
Input #0, mov,mp4,m4a,3gp,3g2,mj2, from 'clip.mp4':
  Duration: 00:00:10.00, start: 0.000000, bitrate: 361 kb/s
[silencedetect @ 0x7f2f3c001c00] silence_start: 1.999932
[silencedetect @ 0x7f2f3c001c00] silence_end: 4.000113 | silence_duration: 2.000181
[Parsed_silencedetect_0 @ 0x7f2f3c001c00] silence_start: 5.999909
[Parsed_silencedetect_0 @ 0x7f2f3c001c00] silence_end: 8.500113 | silence_duration: 2.500204
size=N/A time=00:00:10.00 bitrate=N/A speed= 657x
"""

# The audio pass with loudness: silencedetect's lines among ametadata's (abridged).
AUDIO_STDERR = """\
Stream mapping:
  Stream #0:1 -> #0:0 (aac (native) -> pcm_s16le (native))
[Parsed_ametadata_4 @ 0x7f3408014880] frame:0    pts:0       pts_time:0
[Parsed_ametadata_4 @ 0x7f3408014880] lavfi.astats.Overall.RMS_level=-12.563584
Output #0, null, to 'pipe:':
  Stream #0:0(und): Audio: pcm_s16le, 16000 Hz, mono, s16, 256 kb/s (default)
[Parsed_ametadata_4 @ 0x7f3408014880] frame:1    pts:8000    pts_time:0.5
[Parsed_ametadata_4 @ 0x7f3408014880] lavfi.astats.Overall.RMS_level=-12.597586
[Parsed_silencedetect_0 @ 0x7f34080028c0] silence_start: 0.999917
[Parsed_ametadata_4 @ 0x7f3408014880] frame:2    pts:16000   pts_time:1
[Parsed_ametadata_4 @ 0x7f3408014880] lavfi.astats.Overall.RMS_level=-87.441924
[Parsed_ametadata_4 @ 0x7f3408014880] frame:3    pts:24000   pts_time:1.5
[Parsed_ametadata_4 @ 0x7f3408014880] lavfi.astats.Overall.RMS_level=-inf
[Parsed_silencedetect_0 @ 0x7f34080028c0] silence_end: 2.000104 | silence_duration: 1.000188
[Parsed_ametadata_4 @ 0x7f3408014880] frame:4    pts:32000   pts_time:2
[Parsed_ametadata_4 @ 0x7f3408014880] lavfi.astats.Overall.RMS_level=-30.5
"""

# The key-frame pass (abridged); the first key frame has no score (nothing before it).
SCENE_STDERR = """\
Stream mapping:
  Stream #0:0 -> #0:0 (h264 (native) -> wrapped_avframe (native))
[Parsed_metadata_2 @ 0x7f3d3c00fc00] frame:0    pts:15360   pts_time:1
[Parsed_metadata_2 @ 0x7f3d3c00fc00] lavfi.scene_score=0.019306
Output #0, null, to 'pipe:':
  Stream #0:0(und): Video: wrapped_avframe, yuv420p(progressive), 64x36, 30 fps (default)
[Parsed_metadata_2 @ 0x7f3d3c00fc00] frame:1    pts:30720   pts_time:2
[Parsed_metadata_2 @ 0x7f3d3c00fc00] lavfi.scene_score=0.925955
[Parsed_metadata_2 @ 0x7f3d3c00fc00] frame:2    pts:614400  pts_time:40.0400
[Parsed_metadata_2 @ 0x7f3d3c00fc00] lavfi.scene_score=nan
[Parsed_metadata_2 @ 0x7f3d3c00fc00] frame:3    pts:1244160 pts_time:81.0811
[Parsed_metadata_2 @ 0x7f3d3c00fc00] lavfi.scene_score=0.5
"""

NO_MARGIN = SilenceCut(margin=0.0, min_cut=0.2)
SOURCE = Path("/inbox/processing/talk.mp4")


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


def test_loudness_is_read_per_window_with_digital_silence_floored() -> None:
    assert parse_loudness(AUDIO_STDERR) == [
        (0.0, -12.563584),
        (0.5, -12.597586),
        (1.0, -87.441924),
        (1.5, SILENT_DB),
        (2.0, -30.5),
    ]


def test_silences_are_read_from_the_same_pass_as_loudness() -> None:
    assert parse_silencedetect(AUDIO_STDERR) == [Silence(0.999917, 2.000104)]


def test_scene_scores_are_read_per_key_frame_and_put_on_the_frame_grid() -> None:
    fps = 30000 / 1001

    assert parse_scene_scores(SCENE_STDERR, fps) == [
        (30 / fps, 0.019306),
        (60 / fps, 0.925955),
        (2430 / fps, 0.5),
    ]


def test_scene_scores_without_a_frame_rate_keep_their_printed_times() -> None:
    assert parse_scene_scores(SCENE_STDERR) == [(1.0, 0.019306), (2.0, 0.925955), (81.0811, 0.5)]


def test_the_audio_pass_measures_loudness_in_the_same_run_as_silences() -> None:
    assert audio_arguments(SOURCE, SilenceCut(), loudness=True) == [
        *["-hide_banner", "-nostdin", "-nostats", "-vn", "-sn", "-dn", "-i", str(SOURCE)],
        "-map",
        "0:a:0",
        "-af",
        "silencedetect=n=-28dB:d=0.6,aresample=16000,asetnsamples=n=8000:p=0,"
        "astats=metadata=1:reset=1:measure_perchannel=none:measure_overall=RMS_level,"
        "ametadata=mode=print:key=lavfi.astats.Overall.RMS_level",
        *["-f", "null", "-"],
    ]


def test_the_scene_pass_decodes_only_key_frames_as_thumbnails() -> None:
    assert scene_arguments(SOURCE) == [
        *["-hide_banner", "-nostdin", "-nostats", "-skip_frame", "nokey"],
        *["-an", "-sn", "-dn", "-i", str(SOURCE), "-map", "0:v:0"],
        "-vf",
        "scale=64:36:flags=fast_bilinear,select='gt(scene\\,0)',"
        "metadata=mode=print:key=lavfi.scene_score",
        *["-f", "null", "-"],
    ]


def test_speech_is_what_lies_between_the_silences() -> None:
    analysis = Analysis(duration=10.0, silences=(Silence(0.0, 1.0), Silence(4.0, 5.5)))

    assert analysis.speech() == (Segment(1.0, 4.0), Segment(5.5, 10.0))


def test_without_silences_the_whole_source_is_speech() -> None:
    assert Analysis(duration=10.0).speech() == (Segment(0.0, 10.0),)


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


# the plan: trim, then cut silences, then (tested in test_local_highlight) a highlight


def test_a_plain_edit_keeps_the_whole_source() -> None:
    assert plan_segments(
        duration=10.0, fps=25.0, spec=EditSpec(), analysis=Analysis(duration=10.0)
    ) == [Segment(0.0, 10.0)]


def test_a_trim_keeps_its_part_on_the_frame_grid() -> None:
    spec = EditSpec(trim=Trim(start=1.01, end=4.0))

    segments = plan_segments(duration=10.0, fps=25.0, spec=spec, analysis=Analysis(10.0))

    assert segments == [Segment(1.0, 4.0)]


def test_a_trim_past_the_end_keeps_nothing() -> None:
    spec = EditSpec(trim=Trim(start=12.0))

    assert plan_segments(duration=10.0, fps=25.0, spec=spec, analysis=Analysis(10.0)) == []


@pytest.mark.parametrize(
    ("trim", "kept"),
    [
        (Trim(cut_end=2.5), Segment(0.0, 7.52)),  # 7.5 snaps to the frame at 7.52
        (Trim(start=1.0, cut_end=3.0), Segment(1.0, 7.0)),
        (Trim(last=4.0), Segment(6.0, 10.0)),
        (Trim(last=30.0), Segment(0.0, 10.0)),  # longer than the source: all of it
    ],
    ids=["cut_end", "start_and_cut_end", "last", "last_longer_than_the_source"],
)
def test_a_trim_from_the_end_is_resolved_against_the_duration(trim: Trim, kept: Segment) -> None:
    spec = EditSpec(trim=trim)

    segments = plan_segments(duration=10.0, fps=25.0, spec=spec, analysis=Analysis(10.0))

    assert segments == [kept]


@pytest.mark.parametrize(
    ("trim", "why"),
    [
        (Trim(cut_end=12.0), "the trim cuts the last 12 s, but the source lasts only 10.0 s"),
        (
            Trim(start=6.0, cut_end=5.0),
            "the trim starts at 6 s and cuts the last 5 s, but the source lasts only 10.0 s",
        ),
        (Trim(start=12.0), "the trim starts at 12 s, but the source lasts only 10.0 s"),
    ],
)
def test_a_trim_that_keeps_nothing_says_why(trim: Trim, why: str) -> None:
    assert (
        plan_segments(duration=10.0, fps=25.0, spec=EditSpec(trim=trim), analysis=Analysis(10.0))
        == []
    )
    assert empty_trim(10.0, trim) == why


def test_a_trim_that_keeps_something_has_no_complaint() -> None:
    assert empty_trim(10.0, Trim(cut_end=9.0)) is None
    assert empty_trim(10.0, None) is None


@pytest.mark.parametrize(
    "fields", [{"end": 5.0, "cut_end": 2.0}, {"last": 5.0, "start": 1.0}, {"last": 5.0, "end": 8.0}]
)
def test_a_trim_names_its_end_once(fields: dict[str, float]) -> None:
    with pytest.raises(ValueError, match=r"cut_end|last"):
        Trim.model_validate(fields)


def test_silences_are_cut_inside_the_trim_and_to_its_edges() -> None:
    analysis = Analysis(duration=10.0, silences=(Silence(0.5, 2.6), Silence(5.0, 6.0)))
    spec = EditSpec(trim=Trim(start=1.0, end=9.0), cut_silences=SilenceCut(margin=0.2))

    segments = plan_segments(duration=10.0, fps=25.0, spec=spec, analysis=analysis)

    # the first silence straddles the trim's start: it is cut from there, less one margin
    assert segments == [Segment(2.4, 5.2), Segment(5.8, 9.0)]


def test_without_cut_silences_the_silences_stay() -> None:
    analysis = Analysis(duration=10.0, silences=(Silence(5.0, 6.0),))

    assert plan_segments(duration=10.0, fps=25.0, spec=EditSpec(), analysis=analysis) == [
        Segment(0.0, 10.0)
    ]


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


# a reel shorter than asked says why, with numbers

# 60 s of talk, silent 10-40 s: 30 s of speech, 30.4 s once the silence is cut (margins)
TALK = Analysis(
    duration=60.0,
    silences=(Silence(10.0, 40.0),),
    loudness=tuple(
        (index * 0.5, -50.0 if 10 <= index * 0.5 < 40 else -12.0) for index in range(120)
    ),
)


def reel_warning(spec: EditSpec, analysis: Analysis = TALK) -> str | None:
    segments = plan_segments(duration=analysis.duration, fps=25.0, spec=spec, analysis=analysis)
    return short_reel(segments, duration=analysis.duration, fps=25.0, spec=spec, analysis=analysis)


def test_a_reel_short_for_want_of_speech_after_the_cut_says_how_much_was_left() -> None:
    spec = EditSpec(max_duration=60.0, cut_silences=SilenceCut(margin=0.2))

    assert reel_warning(spec) == (
        "the reel lasts 30.4 s: 30.4 s of speech left after cutting silences; asked 60 s"
    )


def test_a_reel_short_for_want_of_phrases_says_how_much_speech_there_is() -> None:
    # without the cut the material is 60 s, but a highlight keeps whole phrases only
    assert reel_warning(EditSpec(max_duration=45.0)) == (
        "the reel lasts 30.4 s: 30.4 s of speech in the source; asked 45 s"
    )


def test_a_short_source_or_trim_is_named_as_the_reason() -> None:
    assert reel_warning(EditSpec(max_duration=90.0)) == (
        "the reel lasts 60.0 s: the source lasts 60.0 s; asked 90 s"
    )
    assert reel_warning(EditSpec(max_duration=60.0, trim=Trim(start=0.0, end=20.0))) == (
        "the reel lasts 20.0 s: 20.0 s left after the trim; asked 60 s"
    )


def test_a_reel_short_at_a_speed_is_measured_in_output_seconds() -> None:
    spec = EditSpec(max_duration=30.0, speed=2.0, cut_silences=SilenceCut(margin=0.2))

    assert reel_warning(spec) == (
        "the reel lasts 15.2 s: 15.2 s of speech left after cutting silences at 2x speed;"
        " asked 30 s"
    )


def test_a_reel_within_five_percent_of_the_ask_or_none_asked_is_not_short() -> None:
    assert reel_warning(EditSpec(max_duration=31.0, cut_silences=SilenceCut(margin=0.2))) is None
    assert reel_warning(EditSpec(cut_silences=SilenceCut())) is None
