"""The analysis passes and the highlight plan, with real FFmpeg on generated clips."""

from __future__ import annotations

import itertools

import pytest

from nemowatch.engines.local.analysis import LOUDNESS_WINDOW, Analysis, analyse
from nemowatch.engines.local.ffmpeg import find_ffmpeg
from nemowatch.engines.local.plan import plan_segments
from nemowatch.rules import EditSpec, SilenceCut
from tests.media import ClipLayout, Clips


async def analysis_of(layout: ClipLayout, spec: EditSpec) -> Analysis:
    return await analyse(
        layout.path,
        spec,
        ffmpeg=find_ffmpeg(),
        duration=layout.seconds,
        has_audio=layout.audio != "none",
        fps=float(layout.fps),
    )


def in_a_silence(time: float, layout: ClipLayout) -> bool:
    """Whether `time` lies in one of the clip's silences, or at its start or end."""
    return time in (0.0, layout.seconds) or any(
        start <= time <= end for start, end in layout.silences
    )


async def test_the_audio_pass_finds_the_silences_and_measures_loudness(clips: Clips) -> None:
    layout = clips.layout("silences")

    analysis = await analysis_of(layout, EditSpec(max_duration=5))

    edges = [edge for silence in analysis.silences for edge in (silence.start, silence.end)]
    assert edges == pytest.approx([2.0, 4.0, 6.0, 8.5], abs=0.05)
    starts = [start for start, _ in analysis.loudness]
    assert starts == pytest.approx([index * LOUDNESS_WINDOW for index in range(20)], abs=0.03)
    for start, level in analysis.loudness:
        window_end = start + LOUDNESS_WINDOW
        if any(low <= start and window_end <= high for low, high in layout.silences):
            assert level < -80.0
        elif not any(low < window_end and start < high for low, high in layout.silences):
            assert -20.0 < level < -6.0  # the speech tone is about -12 dB RMS


async def test_scene_scores_peak_at_the_scene_changes(clips: Clips) -> None:
    layout = clips.layout("two_minutes")

    analysis = await analysis_of(layout, EditSpec(max_duration=60))

    strongest = sorted(analysis.scenes, key=lambda scene: scene[1], reverse=True)
    peaks = sorted(strongest[: len(layout.scene_changes)])
    assert [time for time, _ in peaks] == pytest.approx(list(layout.scene_changes))
    assert min(score for _, score in peaks) > 0.4
    assert max(score for _, score in strongest[len(layout.scene_changes) :]) < 0.25


async def test_only_the_passes_an_edit_needs_are_run(clips: Clips) -> None:
    layout = clips.layout("silences")

    plain = await analysis_of(layout, EditSpec())
    cutting = await analysis_of(layout, EditSpec(cut_silences=SilenceCut()))

    assert plain == Analysis(duration=10.0)
    assert len(cutting.silences) == 2
    assert (cutting.loudness, cutting.scenes) == ((), ())


async def test_a_source_without_audio_is_analysed_for_scenes_only(clips: Clips) -> None:
    layout = clips.layout("no_audio")

    analysis = await analysis_of(layout, EditSpec(max_duration=1, cut_silences=SilenceCut()))

    assert (analysis.silences, analysis.loudness) == ((), ())


@pytest.mark.parametrize(
    "spec",
    [EditSpec(max_duration=60), EditSpec(max_duration=60, cut_silences=SilenceCut())],
    ids=["highlight", "silences-cut-then-highlight"],
)
async def test_a_two_minute_talk_becomes_a_reel_of_whole_phrases(
    clips: Clips, spec: EditSpec
) -> None:
    layout = clips.layout("two_minutes")
    analysis = await analysis_of(layout, spec)

    segments = plan_segments(duration=layout.seconds, fps=30.0, spec=spec, analysis=analysis)

    total = sum(segment.duration for segment in segments)
    assert 50.0 <= total <= 60.0 + 1e-6
    assert segments == sorted(segments, key=lambda segment: segment.start)
    assert all(earlier.end < later.start for earlier, later in itertools.pairwise(segments))
    cut_mid_speech = [
        edge
        for segment in segments
        for edge in (segment.start, segment.end)
        if not in_a_silence(edge, layout)
    ]
    assert cut_mid_speech == []


async def test_the_reel_is_measured_at_the_edits_speed(clips: Clips) -> None:
    layout = clips.layout("two_minutes")
    spec = EditSpec(max_duration=20, speed=2.0)  # 40 source seconds play in 20
    analysis = await analysis_of(layout, spec)

    segments = plan_segments(duration=layout.seconds, fps=30.0, spec=spec, analysis=analysis)

    assert 0.83 * 40.0 <= sum(segment.duration for segment in segments) <= 40.0 + 1e-6


def test_the_two_minute_layout_alternates_phrases_and_silences(clips: Clips) -> None:
    layout = clips.layout("two_minutes")

    phrases = [end - start for start, end in layout.phrases]
    pauses = [end - start for start, end in layout.silences[1:-1]]
    assert all(2.0 <= phrase <= 8.0 + 1e-9 for phrase in phrases)
    assert all(0.6 - 1e-9 <= pause <= 2.0 + 1e-9 for pause in pauses)
