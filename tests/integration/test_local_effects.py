"""The picture and sound effects (denoise, colour, watermark, reverse, loop, enhance) and
trims from the end, rendered with real FFmpeg on tiny generated clips and measured on the
output: frame numbers, luma and colour means, pixel differences by region, noise energy,
durations. Each runs with every FFmpeg the probe accepts (Debian's 5.1 and the bundled one).
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from nemowatch import outbox
from nemowatch.errors import MediaError
from nemowatch.rules import EditSpec, Trim
from tests.integration.test_local_render import (
    frame,
    frame_numbers,
    level_db,
    produce,
    region_difference,
    samples,
)
from tests.media import TOOL_FFMPEG, accepted_ffmpegs

_FFMPEGS = accepted_ffmpegs()
FRAMES = 40  # the numbered clip: 1.6 s at 25 fps


@pytest.fixture(autouse=True, params=[path for _, path in _FFMPEGS], ids=[n for n, _ in _FFMPEGS])
def ffmpeg(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Path:
    path: Path = request.param
    monkeypatch.setenv("NEMOWATCH_FFMPEG", str(path))
    return path


def _make(path: Path, video: str, audio: str, seconds: float) -> Path:
    subprocess.run(
        [
            *[str(TOOL_FFMPEG), "-hide_banner", "-nostdin", "-loglevel", "error", "-y"],
            *["-f", "lavfi", "-i", video],
            *["-f", "lavfi", "-i", f"aevalsrc={audio}:s=48000:d={seconds}"],
            *["-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-g", "25"],
            *["-c:a", "aac", "-b:a", "128k", "-shortest", str(path)],
        ],
        check=True,
        capture_output=True,
    )
    return path


@pytest.fixture(scope="module")
def numbered(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """1.6 s at 25 fps, 176x32, each frame showing its number in binary (as the render
    tests' numbered clip); a steady tone."""
    bits = "lum='if(mod(floor(N/pow(2\\,floor(X/16)))\\,2)\\,235\\,16)'"
    return _make(
        tmp_path_factory.mktemp("numbered") / "numbered.mp4",
        f"nullsrc=s=176x32:r=25:d={FRAMES / 25},format=gray,geq={bits}",
        "0.4*sin(2*PI*440*t)",
        FRAMES / 25,
    )


@pytest.fixture(scope="module")
def grey(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """1 s of mid grey, 160x120, and a 440 Hz tone with white noise 30 dB under it."""
    return _make(
        tmp_path_factory.mktemp("grey") / "grey.mp4",
        "color=c=0x808080:s=160x120:r=25:d=1",
        "0.4*sin(2*PI*440*t)+0.02*(2*random(0)-1)",
        1.0,
    )


def _mean(pixels: bytes) -> float:
    return sum(pixels) / len(pixels)


def _channel_means(path: Path, seconds: float) -> tuple[float, float, float]:
    width, height, pixels = frame(path, seconds, "rgb24")
    count = width * height
    red, green, blue = (sum(pixels[index::3]) / count for index in range(3))
    return red, green, blue


def _hiss_db(path: Path) -> float:
    """The level above 3 kHz (the tone is at 440 Hz: what is left there is noise)."""
    filtered = path.with_name(path.stem + ".hiss.wav")
    subprocess.run(
        [
            *[str(TOOL_FFMPEG), "-hide_banner", "-nostdin", "-loglevel", "error", "-y"],
            *["-i", str(path), "-af", "highpass=f=3000,highpass=f=3000", str(filtered)],
        ],
        check=True,
        capture_output=True,
    )
    rate, audio = samples(filtered)
    return level_db(audio, rate, [(0.2, 0.8)])


async def test_reverse_plays_the_last_frame_first_and_the_first_last(
    numbered: Path, tmp_path: Path
) -> None:
    result = await produce(numbered, tmp_path / "work", edit=EditSpec(reverse=True))

    numbers = frame_numbers(result.path)
    assert numbers[0] == FRAMES - 1
    assert numbers[-1] == 0
    assert numbers == sorted(numbers, reverse=True)
    outbox.verify(result.path, result.draft)


async def test_a_loop_plays_the_edit_n_times(numbered: Path, tmp_path: Path) -> None:
    result = await produce(numbered, tmp_path / "work", edit=EditSpec(loop=3))

    assert result.draft.duration == pytest.approx(3 * FRAMES / 25)
    assert frame_numbers(result.path) == list(range(FRAMES)) * 3
    assert result.probe.audio is not None
    assert result.probe.audio.duration == pytest.approx(3 * FRAMES / 25, abs=0.05)


async def test_brightness_raises_the_mean_luma(grey: Path, tmp_path: Path) -> None:
    plain = await produce(grey, tmp_path / "plain")
    brighter = await produce(
        grey, tmp_path / "bright", edit=EditSpec.model_validate({"color": {"brightness": 0.15}})
    )

    assert _mean(frame(brighter.path, 0.5)[2]) > _mean(frame(plain.path, 0.5)[2]) + 20


async def test_warmth_makes_the_picture_redder_than_it_is_blue(grey: Path, tmp_path: Path) -> None:
    result = await produce(
        grey, tmp_path / "warm", edit=EditSpec.model_validate({"color": {"warmth": 0.5}})
    )

    red, _, blue = _channel_means(result.path, 0.5)
    assert red > blue + 20


async def test_a_watermark_changes_its_corner_and_nothing_else(grey: Path, tmp_path: Path) -> None:
    logo = tmp_path / "logo.png"
    subprocess.run(
        [
            *[str(TOOL_FFMPEG), "-hide_banner", "-nostdin", "-loglevel", "error", "-y"],
            *["-f", "lavfi", "-i", "color=c=white:s=40x20", "-frames:v", "1", str(logo)],
        ],
        check=True,
        capture_output=True,
    )
    plain = await produce(grey, tmp_path / "plain")
    marked = await produce(
        grey,
        tmp_path / "marked",
        edit=EditSpec.model_validate(
            {"watermark": {"file": str(logo), "corner": "top-left", "size": 0.25, "opacity": 1}}
        ),
    )

    width, height, before = frame(plain.path, 0.5)
    _, _, after = frame(marked.path, 0.5)
    # 25 % of 160 is 40 pixels wide (20 high), 5 pixels (3 % of 160) from the edges
    assert region_difference(before, after, width, range(6, 24), range(6, 44)) > 80
    assert region_difference(before, after, width, range(40, height), range(width)) < 2
    assert region_difference(before, after, width, range(height), range(60, width)) < 2


async def test_denoise_lowers_the_hiss_and_keeps_the_tone(grey: Path, tmp_path: Path) -> None:
    plain = await produce(grey, tmp_path / "plain", edit=EditSpec(normalize=False))
    cleaned = await produce(grey, tmp_path / "clean", edit=EditSpec(normalize=False, denoise=12.0))

    assert _hiss_db(cleaned.path) < _hiss_db(plain.path) - 6
    rate, before = samples(plain.path)
    _, after = samples(cleaned.path)
    assert level_db(after, rate, [(0.2, 0.8)]) == pytest.approx(
        level_db(before, rate, [(0.2, 0.8)]), abs=1.0
    )


@pytest.mark.parametrize(
    ("trim", "first", "count"),
    [(Trim(cut_end=0.6), 0, FRAMES - 15), (Trim(last=0.4), FRAMES - 10, 10)],
    ids=["cut_end", "last"],
)
async def test_a_trim_from_the_end_keeps_the_frames_it_says(
    numbered: Path, tmp_path: Path, trim: Trim, first: int, count: int
) -> None:
    result = await produce(numbered, tmp_path / "work", edit=EditSpec(trim=trim))

    assert frame_numbers(result.path) == list(range(first, first + count))


async def test_a_trim_from_the_end_that_leaves_nothing_fails_the_job_saying_why(
    numbered: Path, tmp_path: Path
) -> None:
    with pytest.raises(MediaError) as raised:
        await produce(numbered, tmp_path / "work", edit=EditSpec(trim=Trim(cut_end=5)))

    assert "cuts the last 5 s, but the source lasts only 1.6 s" in str(raised.value)
    assert "trim" in (raised.value.hint or "")


async def test_enhance_lowers_the_hiss_and_leaves_a_grey_picture_grey(
    grey: Path, tmp_path: Path
) -> None:
    plain = await produce(grey, tmp_path / "plain")
    enhanced = await produce(grey, tmp_path / "enhanced", edit=EditSpec(enhance=True))

    assert _hiss_db(enhanced.path) < _hiss_db(plain.path) - 3
    # the preset's picture is a gentle contrast about mid-grey: a flat grey stays as bright
    assert _mean(frame(enhanced.path, 0.5)[2]) == pytest.approx(
        _mean(frame(plain.path, 0.5)[2]), abs=3
    )


def test_a_missing_watermark_is_named(tmp_path: Path) -> None:
    # (the engine's own check: `nemowatch check` says it earlier, see test_config_checks)
    from nemowatch.engines.local.engine import _watermark_file

    with pytest.raises(MediaError) as raised:
        _watermark_file(EditSpec.model_validate({"watermark": str(tmp_path / "logo.png")}))

    assert str(tmp_path / "logo.png") in str(raised.value)
