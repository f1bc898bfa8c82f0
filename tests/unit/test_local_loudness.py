"""The loudness plan (pure): BS.1770 gating over the analysis's levels, the prediction a
draft carries, the gain and limiter, and reading ebur128's summary."""

from __future__ import annotations

import math

import pytest

from nemowatch.engines.base import Draft
from nemowatch.engines.local.analysis import Level, Segment, parse_levels
from nemowatch.engines.local.loudness import (
    Loudness,
    corrected,
    edited_loudness,
    gated_loudness,
    normalization_plan,
    parse_summary,
    predicted,
    with_prediction,
)
from nemowatch.engines.local.music import MusicChoice
from nemowatch.engines.local.timeline import SourceFacts, build_draft
from nemowatch.rules import EditSpec, ExportSpec

MP4 = "mov,mp4,m4a,3gp,3g2,mj2"
TALK = SourceFacts("talk.mp4", 10.0, 160, 120, 25.0, has_audio=True, format=MP4)
KEPT = [Segment(0.0, 2.0), Segment(6.0, 8.0)]


def draft(segments: list[Segment] = KEPT, **edit: object) -> Draft:
    return build_draft(
        segments,
        source=TALK,
        edit=EditSpec.model_validate(edit),
        export=ExportSpec(),
        speech=segments,
        music=MusicChoice("lofi", generated=True) if edit.get("music") else None,
    )


def steps(start: float, end: float, momentary: float, peak: float) -> list[Level]:
    """100 ms levels from `start` to `end`, all alike."""
    count = round((end - start) / Level.STEP)
    return [Level(round(start + index * Level.STEP, 3), momentary, peak) for index in range(count)]


# BS.1770 gating


def test_blocks_of_one_loudness_integrate_to_it() -> None:
    assert gated_loudness([-20.0] * 50) == pytest.approx(-20.0)


def test_the_absolute_gate_drops_blocks_at_or_under_minus_70_lufs() -> None:
    assert gated_loudness([-20.0] * 10 + [-75.0] * 90 + [-math.inf] * 5) == pytest.approx(-20.0)
    assert gated_loudness([-80.0, -math.inf]) == -math.inf


def test_the_relative_gate_drops_blocks_10_lu_under_the_ungated_mean() -> None:
    # ungated: 10 log10((10^-2 + 10^-3.5) / 2) = -22.86; gate -32.86 drops the -35 blocks
    assert gated_loudness([-20.0] * 10 + [-35.0] * 10) == pytest.approx(-20.0)
    # -25 is above that gate: the mean of -20 and -25 in energy
    energy = (10 ** ((-20.0 + 0.691) / 10) + 10 ** ((-25.0 + 0.691) / 10)) / 2
    assert gated_loudness([-20.0, -25.0]) == pytest.approx(-0.691 + 10 * math.log10(energy))


def energy(loudness: float) -> float:
    return 10 ** ((loudness + 0.691) / 10)


def loudness_of(energies: list[float]) -> float:
    return -0.691 + 10 * math.log10(sum(energies) / len(energies))


def test_the_edited_loudness_counts_the_steps_inside_the_kept_stretches() -> None:
    levels = steps(0, 2, -10.0, -3.0) + steps(2, 6, -30.0, -20.0) + steps(6, 8, -18.0, -9.0)

    joined = edited_loudness(levels, [(6.0, 8.0), (0.0, 2.0)])
    quiet = edited_loudness(levels, [(2.0, 6.0)])

    # 20 steps of -18 then 20 of -10: 37 blocks of 4 steps, 3 of them across the join
    blocks = [energy(-18.0)] * 17 + [
        (energy(-18.0) * (4 - loud) + energy(-10.0) * loud) / 4 for loud in (1, 2, 3)
    ]
    blocks += [energy(-10.0)] * 17
    assert joined.integrated == pytest.approx(loudness_of(blocks))
    assert joined.true_peak == -3.0
    assert (quiet.integrated, quiet.true_peak) == pytest.approx((-30.0, -20.0))
    assert edited_loudness(levels, []) == Loudness(-math.inf, -math.inf)
    assert edited_loudness(levels, [(0.0, 0.3)]).integrated == -math.inf  # no whole block


def test_a_join_of_a_loud_and_a_quiet_stretch_counts_the_blocks_across_it() -> None:
    levels = steps(0, 1, -10.0, -3.0) + steps(1, 2, -40.0, -30.0)

    joined = edited_loudness(levels, [(0.0, 2.0)])

    # 17 blocks: 7 loud, 3 across the change, 7 quiet (under the relative gate)
    across = [(energy(-10.0) * loud + energy(-40.0) * (4 - loud)) / 4 for loud in (3, 2, 1)]
    ungated = loudness_of([energy(-10.0)] * 7 + across + [energy(-40.0)] * 7)
    kept = [
        block
        for block in [energy(-10.0)] * 7 + across
        if 10 * math.log10(block) - 0.691 > ungated - 10
    ]
    assert joined.integrated == pytest.approx(loudness_of(kept))


# the prediction in the draft


def test_a_draft_carries_the_loudness_of_its_cuts() -> None:
    levels = steps(0, 2, -20.0, -8.0) + steps(2, 6, -40.0, -30.0) + steps(6, 8, -20.0, -6.0)

    planned = with_prediction(draft(), levels)

    loudness = predicted(planned, ExportSpec())
    assert loudness is not None
    assert (loudness.integrated, loudness.true_peak) == pytest.approx((-20.0, -6.0))
    assert with_prediction(draft(), []) == draft()


def test_the_prediction_follows_the_source_volume() -> None:
    levels = steps(0, 10, -20.0, -8.0)

    quieter = with_prediction(draft(volume=0.5), levels)

    loudness = predicted(quieter, ExportSpec())
    assert loudness is not None
    assert loudness.integrated == pytest.approx(-20.0 + 20 * math.log10(0.5))
    assert loudness.true_peak == pytest.approx(-8.0 + 20 * math.log10(0.5))


@pytest.mark.parametrize(
    "edit",
    [
        {"music": "lofi"},
        {"speed": 1.5},
        {"denoise": 12},
        {"reverse": True},
        {"fade_out": 2.0},  # half a second is 12 % of the 4 s output: measured
    ],
)
def test_no_prediction_where_the_edit_changes_the_sound_beyond_a_gain(
    edit: dict[str, object],
) -> None:
    planned = with_prediction(draft(**edit), steps(0, 10, -20.0, -8.0))

    assert predicted(planned, ExportSpec()) is None


def test_no_prediction_for_other_cuts_than_those_measured() -> None:
    planned = with_prediction(draft(), steps(0, 10, -20.0, -8.0))
    other = draft([Segment(0.0, 3.0)])
    moved = Draft(other.tracks, other.duration_ms, planned.metadata)

    assert predicted(moved, ExportSpec()) is None
    assert predicted(draft(), ExportSpec()) is None  # planned without levels


def test_a_short_fade_keeps_the_prediction() -> None:
    long = [Segment(0.0, 10.0)]
    planned = with_prediction(draft(long, fade_in=0.2), steps(0, 10, -20.0, -8.0))

    assert predicted(planned, ExportSpec()) == Loudness(-20.0, -8.0)


# the plan


def test_a_gain_alone_where_it_leaves_the_peaks_under_minus_1_5_dbtp() -> None:
    plan = normalization_plan(Loudness(-21.75, -18.06))

    assert plan.mode == "linear"
    assert plan.filter == "volume=7.75dB"
    assert plan.gain_db == pytest.approx(7.75)


def test_a_gain_and_a_limiter_where_the_peaks_would_pass_minus_1_5_dbtp() -> None:
    plan = normalization_plan(Loudness(-24.0, -6.0))

    assert plan.mode == "limiter"
    assert plan.filter == "volume=10dB,alimiter=limit=0.7943:attack=5:release=50:level=0:latency=1"
    assert "peaks would reach 4.0 dBTP" in plan.reason


def test_silence_or_no_measure_is_left_alone() -> None:
    assert normalization_plan(Loudness(-math.inf, -math.inf)).mode == "none"
    assert normalization_plan(Loudness(-75.0, -40.0)).mode == "none"
    assert normalization_plan(None).mode == "none"


def test_an_encode_off_the_target_is_corrected() -> None:
    plan = normalization_plan(Loudness(-24.0, -6.0))

    short = corrected(plan, Loudness(-15.5, -2.1))
    far = corrected(plan, Loudness(-25.0, -2.1))

    assert short.mode == "limiter" and short.gain_db == pytest.approx(11.5)
    assert short.filter.startswith("volume=11.5dB,alimiter=")
    assert "+1.50 dB more" in short.reason
    assert far.gain_db == pytest.approx(16.0)  # at most 6 dB more
    assert corrected(plan, Loudness(-14.3, -2.1)) is plan
    assert corrected(plan, None) is plan


def test_a_gain_whose_peaks_came_out_too_high_gets_a_limiter() -> None:
    plan = normalization_plan(Loudness(-20.0, -9.0))  # peaks predicted at -3 dBTP

    assert corrected(plan, Loudness(-14.0, -3.0)) is plan
    limited = corrected(plan, Loudness(-14.0, -0.9))
    assert limited.mode == "limiter"
    quiet = corrected(normalization_plan(Loudness(-20.0, -20.0)), Loudness(-15.0, -10.0))
    assert quiet.mode == "linear" and quiet.gain_db == pytest.approx(7.0)


# reading FFmpeg


SUMMARY = """\
[Parsed_ebur128_0 @ 0x5600] Summary:

  Integrated loudness:
    I:         -10.7 LUFS
    Threshold: -20.8 LUFS

  Loudness range:
    LRA:         3.7 LU
    Threshold: -31.6 LUFS
    LRA low:   -14.2 LUFS
    LRA high:  -10.5 LUFS

  True peak:
    Peak:       -6.0 dBFS
"""


def test_ebur128s_summary_is_read_from_stderr() -> None:
    assert parse_summary("Input #0 ...\n" + SUMMARY) == Loudness(-10.7, -6.0)
    assert parse_summary("no summary") is None
    silent = SUMMARY.replace("-10.7 LUFS", "-70.0 LUFS").replace("-6.0 dBFS", "-inf dBFS")
    assert parse_summary(silent) == Loudness(-70.0, -math.inf)


LEVELS = """\
[Parsed_ametadata_5 @ 0x55] frame:0    pts:0       pts_time:0
[Parsed_ametadata_5 @ 0x55] lavfi.astats.1.RMS_level=-20.000000
[Parsed_ametadata_5 @ 0x55] lavfi.astats.2.RMS_level=-20.000000
[Parsed_ametadata_5 @ 0x55] frame:1    pts:4800    pts_time:0.1
[Parsed_ametadata_5 @ 0x55] lavfi.astats.1.RMS_level=-inf
[Parsed_ametadata_5 @ 0x55] lavfi.astats.2.RMS_level=-inf
[Parsed_ametadata_9 @ 0x56] frame:0    pts:0       pts_time:0
[Parsed_ametadata_9 @ 0x56] lavfi.astats.Overall.Peak_level=-6.020335
[Parsed_ametadata_5 @ 0x55] frame:2    pts:9600    pts_time:0.2
[Parsed_ametadata_5 @ 0x55] lavfi.astats.1.RMS_level=-13.000000
[Parsed_ametadata_5 @ 0x55] lavfi.astats.2.RMS_level=-inf
[Parsed_ametadata_9 @ 0x56] frame:1    pts:19200   pts_time:0.1
[Parsed_ametadata_9 @ 0x56] lavfi.astats.Overall.Peak_level=-inf
[Parsed_ametadata_9 @ 0x56] frame:2    pts:38400   pts_time:0.2
[Parsed_ametadata_9 @ 0x56] lavfi.astats.Overall.Peak_level=-7.5
"""


def test_each_steps_loudness_sums_its_channels_and_pairs_with_its_true_peak() -> None:
    levels = parse_levels(LEVELS)

    assert [(level.time, level.peak) for level in levels] == [
        (0.0, -6.020335),
        (0.1, -math.inf),
        (0.2, -7.5),
    ]
    # two channels at -20 dB: 3 dB more than one, less BS.1770's 0.691
    assert levels[0].loudness == pytest.approx(-20.0 + 10 * math.log10(2) - 0.691)
    assert levels[1].loudness == -math.inf  # digital silence
    assert levels[2].loudness == pytest.approx(-13.0 - 0.691)
