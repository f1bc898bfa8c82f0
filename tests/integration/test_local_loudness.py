"""The loudness the analysis predicts for an edit, against FFmpeg's measure of the edited
sound itself (the render's own audio graph through ebur128), with each FFmpeg."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from nemowatch.engines.local.analysis import Segment, analyse
from nemowatch.engines.local.arguments import measure_arguments
from nemowatch.engines.local.ffmpeg import run_ffmpeg
from nemowatch.engines.local.graph import RenderFiles
from nemowatch.engines.local.loudness import Loudness, parse_summary, predicted, with_prediction
from nemowatch.engines.local.timeline import SourceFacts, build_draft
from nemowatch.rules import EditSpec, ExportSpec
from tests.media import ClipLayout, accepted_ffmpegs, make_clip

pytestmark = pytest.mark.slow

_FFMPEGS = accepted_ffmpegs()

# loud speech (0-4 s), the same 20 dB quieter (4-8 s), loud again (8-10 s)
GAINS = ((4.0, 8.0, 0.1),)
# a cut joining loud and quiet stretches, across the change at 4 s
CUTS = [Segment(1.0, 3.0), Segment(5.0, 7.5), Segment(8.2, 9.6)]


@pytest.fixture(params=[path for _, path in _FFMPEGS], ids=[name for name, _ in _FFMPEGS])
def ffmpeg(request: pytest.FixtureRequest) -> Path:
    path: Path = request.param
    return path


def clip(folder: Path, ffmpeg: Path, *, channels: int, sample_rate: int) -> ClipLayout:
    return make_clip(
        folder / f"talk-{channels}ch.mp4",
        10,
        size="64x36",
        audio="speech_with_silences",
        silences=((3.2, 3.6),),
        gains=GAINS,
        sample_rate=sample_rate,
        channels=channels,
        ffmpeg=ffmpeg,
    )


async def predicted_and_measured(
    layout: ClipLayout, ffmpeg: Path, segments: list[Segment]
) -> tuple[Loudness, Loudness]:
    """What the analysis predicts for `segments` of `layout`, and what ebur128 measures of
    the render's audio graph for them."""
    analysis = await analyse(
        layout.path,
        EditSpec(),
        ffmpeg=ffmpeg,
        duration=layout.seconds,
        has_audio=True,
        fps=float(layout.fps),
        levels=True,
    )
    source = SourceFacts(
        layout.path.name, layout.seconds, 64, 36, float(layout.fps), has_audio=True, format="mov"
    )
    draft = build_draft(
        segments, source=source, edit=EditSpec(), export=ExportSpec(), speech=segments
    )
    draft = with_prediction(draft, analysis.levels)
    prediction = predicted(draft, ExportSpec())
    assert prediction is not None
    files = RenderFiles(font=Path("/unused.otf"), text_files=())
    stderr = await run_ffmpeg(
        measure_arguments(draft, ExportSpec(), layout.path, files), ffmpeg=ffmpeg
    )
    measured = parse_summary(stderr)
    assert measured is not None
    return prediction, measured


@pytest.mark.parametrize(
    ("channels", "sample_rate"), [(1, 44100), (2, 48000)], ids=["mono-44k", "stereo-48k"]
)
async def test_the_predicted_loudness_of_a_cut_is_within_a_fifth_of_a_lu_of_its_measure(
    tmp_path: Path, ffmpeg: Path, channels: int, sample_rate: int
) -> None:
    # ebur128 prints tenths: its rounding is up to 0.05 of the 0.2
    layout = clip(tmp_path, ffmpeg, channels=channels, sample_rate=sample_rate)

    prediction, measured = await predicted_and_measured(layout, ffmpeg, CUTS)

    assert prediction.integrated == pytest.approx(measured.integrated, abs=0.2)
    assert prediction.true_peak == pytest.approx(measured.true_peak, abs=0.3)


async def test_a_mono_source_is_measured_as_its_stereo_output_sounds(
    tmp_path: Path, ffmpeg: Path
) -> None:
    # The render upmixes mono at -3 dB a side: as loud as the mono measured as one channel,
    # not 3 dB louder as a mono source played on both sides ("dual mono") would be.
    mono = clip(tmp_path, ffmpeg, channels=1, sample_rate=48000)
    stereo = clip(tmp_path, ffmpeg, channels=2, sample_rate=48000)
    whole = [Segment(0.0, 10.0)]

    mono_prediction, mono_measured = await predicted_and_measured(mono, ffmpeg, whole)
    stereo_prediction, _ = await predicted_and_measured(stereo, ffmpeg, whole)

    assert mono_prediction.integrated == pytest.approx(mono_measured.integrated, abs=0.2)
    assert stereo_prediction.integrated - mono_prediction.integrated == pytest.approx(
        20 * math.log10(math.sqrt(2)), abs=0.2
    )


async def test_keeping_only_the_quiet_stretch_predicts_it_20_db_quieter(
    tmp_path: Path, ffmpeg: Path
) -> None:
    layout = clip(tmp_path, ffmpeg, channels=1, sample_rate=44100)

    loud, _ = await predicted_and_measured(layout, ffmpeg, [Segment(0.0, 3.0)])
    quiet, measured = await predicted_and_measured(layout, ffmpeg, [Segment(4.5, 7.5)])

    assert quiet.integrated == pytest.approx(measured.integrated, abs=0.2)
    assert loud.integrated - quiet.integrated == pytest.approx(20.0, abs=0.5)
