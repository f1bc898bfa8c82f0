"""What the local engine's renders hold, measured on the files, with real FFmpeg.

Each test renders a small generated clip through the engine (draft, export) and checks the
output the way a viewer's player or a platform would: streams and sizes by probing,
loudness with FFmpeg's `ebur128`, pictures and sound decoded with PyAV and compared in
plain Python.
"""

from __future__ import annotations

import math
import re
import subprocess
from array import array
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import av
import pytest

from nemowatch import outbox
from nemowatch.engines.base import Draft, Job, Render
from nemowatch.engines.local import LocalEngine
from nemowatch.engines.local.analysis import Segment
from nemowatch.engines.local.ffmpeg import find_ffmpeg
from nemowatch.engines.local.timeline import AUDIO_TRACK, SourceFacts, build_draft, music_of
from nemowatch.probe import Probe, moov_before_mdat, probe
from nemowatch.rules import EditSpec, ExportSpec, Quality
from tests.media import TOOL_FFMPEG, Clips, accepted_ffmpegs, make_clip

pytestmark = pytest.mark.slow

# the silences clip speaks at 0-2 s, 4-6 s and 8.5-10 s
SPEECH = ((0.0, 2.0), (4.0, 6.0), (8.5, 10.0))
BORDER = 12  # pixels of each coloured side of the bordered clip


# Which FFmpeg renders. A test runs with each FFmpeg the probe accepts on this machine
# (Debian's 5.1 and the bundled 9.0 here) where the version can change the outcome:
#   - titles (drawtext): 5.1 has no `text_align`, so the builders draw a title line by line;
#   - loudness: loudnorm, alimiter and ebur128 are filters whose numbers move between
#     versions, and the tests hold them to -14 LUFS and -1 dBTP;
#   - cuts read by seeking: each version's demuxers seek on their own terms;
#   - the encoders that are libraries of each build (VP9, Opus; GIF's palette filters).
# The rest (`ONE_FFMPEG`: the mov container, the music's ducking, the blur fit, speed,
# fades, a muted export, text asking for a format) use filters and options unchanged since
# 5.1, on the same paths of the builders whatever the version: they run once, with the
# FFmpeg nemowatch chooses by default. That halves their share of the suite's CPU.
_FFMPEGS = accepted_ffmpegs()
_DEFAULT = find_ffmpeg()
ONE_FFMPEG = pytest.mark.one_ffmpeg


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Every test with each accepted FFmpeg, or the `ONE_FFMPEG` ones with the default."""
    every = metafunc.definition.get_closest_marker("one_ffmpeg") is None
    chosen = [(name, path) for name, path in _FFMPEGS if every or path == _DEFAULT]
    chosen = chosen or [("default", _DEFAULT)]
    metafunc.parametrize(
        "ffmpeg", [path for _, path in chosen], ids=[name for name, _ in chosen], indirect=True
    )


@pytest.fixture(scope="module")
def music_loops(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The generated mood loops, kept between this file's renders as the daemon keeps them
    between jobs (its state folder's cache): each mood is made once per FFmpeg, not once
    per test (a few seconds of CPU each)."""
    return tmp_path_factory.mktemp("music-loops")


@pytest.fixture(autouse=True)
def ffmpeg(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch, music_loops: Path
) -> Path:
    """The FFmpeg this run of the test renders with (see `pytest_generate_tests`)."""
    path: Path = request.param
    monkeypatch.setenv("NEMOWATCH_FFMPEG", str(path))
    monkeypatch.setitem(MUSIC_CACHE, "folder", music_loops / path.name)
    return path


MUSIC_CACHE: dict[str, Path] = {}  # "folder": the loops of the FFmpeg in use (`ffmpeg`)


@dataclass(frozen=True)
class Result:
    draft: Draft
    render: Render
    path: Path
    probe: Probe


async def produce(
    source: Path,
    work_dir: Path,
    *,
    edit: EditSpec | None = None,
    export: ExportSpec | None = None,
    instructions: tuple[str, ...] = (),
    adjust: object = None,
) -> Result:
    """Draft and export `source` as the pipeline does (`adjust` may change the draft)."""
    engine = LocalEngine(cache_dir=MUSIC_CACHE.get("folder"))
    export = export or ExportSpec(quality=Quality.LOW)
    job = Job(
        id="job-1",
        rule="reels",
        source=source,
        instructions=instructions,
        edit=edit or EditSpec(),
        export=export,
        work_dir=work_dir,
    )
    session = await engine.open_session(job)
    draft = await engine.draft(session)
    if callable(adjust):
        draft = adjust(draft)
    render = await engine.export(session, draft, export)
    path = Path(render.data["path"])
    return Result(draft, render, path, probe(path))


@pytest.fixture(scope="module")
def bordered(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """2 s of grey, 320x180, framed red on top, green below, blue left, yellow right."""
    path = tmp_path_factory.mktemp("bordered") / "bordered.mp4"
    sides = [
        f"drawbox=x=0:y=0:w=iw:h={BORDER}:color=red:t=fill",
        f"drawbox=x=0:y=ih-{BORDER}:w=iw:h={BORDER}:color=lime:t=fill",
        f"drawbox=x=0:y=0:w={BORDER}:h=ih:color=blue:t=fill",
        f"drawbox=x=iw-{BORDER}:y=0:w={BORDER}:h=ih:color=yellow:t=fill",
    ]
    ffmpeg = find_ffmpeg()
    subprocess.run(
        [
            *[str(ffmpeg), "-hide_banner", "-nostdin", "-loglevel", "error", "-y"],
            *["-f", "lavfi", "-i", "color=c=gray:s=320x180:r=25:d=2," + ",".join(sides)],
            *["-f", "lavfi", "-i", "sine=frequency=330:sample_rate=44100:duration=2"],
            *["-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p"],
            *["-c:a", "aac", "-shortest", str(path)],
        ],
        check=True,
        capture_output=True,
    )
    return path


@pytest.fixture(scope="module")
def numbered(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """12 s at 30 fps, 176x32, each frame showing its number in binary (16-pixel blocks,
    white for 1, lowest bit on the left); a keyframe every second, B-frames; a tone."""
    path = tmp_path_factory.mktemp("numbered") / "numbered.mp4"
    bits = "lum='if(mod(floor(N/pow(2\\,floor(X/16)))\\,2)\\,235\\,16)'"
    subprocess.run(
        [
            *[str(TOOL_FFMPEG), "-hide_banner", "-nostdin", "-loglevel", "error", "-y"],
            *["-f", "lavfi", "-i", f"nullsrc=s=176x32:r=30:d=12,format=gray,geq={bits}"],
            *["-f", "lavfi", "-i", "sine=frequency=330:sample_rate=48000:duration=12"],
            *["-c:v", "libx264", "-preset", "fast", "-g", "30", "-bf", "2", "-pix_fmt", "yuv420p"],
            *["-c:a", "aac", "-shortest", str(path)],
        ],
        check=True,
        capture_output=True,
    )
    return path


@pytest.fixture(scope="module")
def wide(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """3 s of testsrc2 at 640x360 with a tone: room for a legible title."""
    path = tmp_path_factory.mktemp("wide") / "wide.mp4"
    return make_clip(path, 3, size="640x360").path


# what a file holds


def loudness(path: Path) -> tuple[float, float]:
    """(integrated loudness in LUFS, true peak in dBTP), as `ebur128` measures them."""
    completed = subprocess.run(
        [
            *[str(TOOL_FFMPEG), "-hide_banner", "-nostats", "-nostdin", "-i", str(path)],
            *["-map", "0:a:0", "-af", "ebur128=peak=true", "-f", "null", "-"],
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    summary = completed.stderr[completed.stderr.rindex("Summary:") :]
    integrated = re.search(r"I:\s+(-?[\d.]+|-inf) LUFS", summary)
    peak = re.search(r"True peak:\s+Peak:\s+(-?[\d.]+|-inf) dBFS", summary)
    assert integrated is not None and peak is not None, summary
    return float(integrated.group(1)), float(peak.group(1))


def frame(path: Path, seconds: float, pixel_format: str = "gray") -> tuple[int, int, bytes]:
    """(width, height, pixels) of the first frame at or after `seconds`, rows packed."""
    with av.open(str(path)) as container:
        for decoded in container.decode(video=0):
            if decoded.time is not None and decoded.time + 1e-6 >= seconds:
                image = decoded.reformat(format=pixel_format)
                plane = image.planes[0]
                row = image.width * (3 if pixel_format == "rgb24" else 1)
                data = bytes(plane)
                pixels = b"".join(
                    data[line * plane.line_size : line * plane.line_size + row]
                    for line in range(image.height)
                )
                return image.width, image.height, pixels
    raise AssertionError(f"{path.name} has no frame at {seconds} s")


def region_difference(one: bytes, other: bytes, width: int, rows: range, columns: range) -> float:
    """The mean absolute difference of two gray frames over a rectangle."""
    total = 0
    for line in rows:
        start = line * width
        for column in columns:
            total += abs(one[start + column] - other[start + column])
    return total / (len(rows) * len(columns))


def frame_numbers(path: Path) -> list[int]:
    """The numbers the frames of a render of the numbered clip show, in order."""
    numbers = []
    with av.open(str(path)) as container:
        for decoded in container.decode(video=0):
            image = decoded.reformat(format="gray")
            plane = image.planes[0]
            row = bytes(plane)[16 * plane.line_size : 17 * plane.line_size]
            numbers.append(sum(1 << bit for bit in range(11) if row[16 * bit + 8] > 128))
    return numbers


def samples(path: Path) -> tuple[int, array[int]]:
    """(rate, samples) of the first audio stream, mixed down to mono 16-bit."""
    resampler = av.AudioResampler(format="s16", layout="mono", rate=48000)
    collected = array("h")
    with av.open(str(path)) as container:
        for decoded in container.decode(audio=0):
            for converted in resampler.resample(decoded):
                collected.frombytes(bytes(converted.planes[0])[: converted.samples * 2])
    return 48000, collected


def level_db(audio: array[int], rate: int, windows: Sequence[tuple[float, float]]) -> float:
    """The RMS level over `windows` (seconds), in dB of full scale."""
    total, count = 0.0, 0
    for start, end in windows:
        for value in audio[int(start * rate) : int(end * rate)]:
            total += value * value
            count += 1
    return 10 * math.log10(total / count / 32768**2)


# acceptance


async def test_an_mp4_export_probes_as_its_spec_says(clips: Clips, tmp_path: Path) -> None:
    await _export_probes_as_its_spec_says(clips, tmp_path, "mp4")


@ONE_FFMPEG  # the mp4's filter graph and encoders; only the muxer differs
async def test_a_mov_export_probes_as_its_spec_says(clips: Clips, tmp_path: Path) -> None:
    await _export_probes_as_its_spec_says(clips, tmp_path, "mov")


async def _export_probes_as_its_spec_says(clips: Clips, tmp_path: Path, export_format: str) -> None:
    export = ExportSpec.model_validate(
        {"format": export_format, "resolution": "360p", "fps": 30, "quality": "low"}
    )
    edit = EditSpec.model_validate(
        {"cut_silences": True, "aspect": "9:16", "fit": "crop", "music": "lofi", "title": "Hi"}
    )

    result = await produce(clips.silences, tmp_path / "work", edit=edit, export=export)

    video, audio = result.probe.video, result.probe.audio
    assert video is not None and audio is not None
    assert result.path.name == f"render.{export_format}"
    assert (video.codec, video.profile, video.pix_fmt) == ("h264", "High", "yuv420p")
    assert (video.width, video.height) == (360, 640)
    assert video.fps == pytest.approx(30.0)
    assert (audio.codec, audio.sample_rate, audio.channels) == ("aac", 48000, 2)
    assert moov_before_mdat(result.path)
    assert video.duration is not None and audio.duration is not None
    assert abs(video.duration - result.draft.duration) <= 1 / 30 + 0.001  # one frame
    assert abs(audio.duration - video.duration) <= 0.05
    outbox.verify(result.path, result.draft)


@pytest.mark.parametrize(
    ("name", "edit", "mode"),
    [
        ("speech", {}, "linear"),
        ("speech and music", {"music": "calm", "cut_silences": True}, None),
        ("music alone", {"music": "upbeat", "mute": True}, "limiter"),
        ("quiet speech", {"volume": 0.05}, None),
    ],
)
async def test_exports_are_minus_14_lufs_with_true_peaks_under_minus_1_dbtp(
    clips: Clips, tmp_path: Path, name: str, edit: dict[str, object], mode: str | None
) -> None:
    result = await produce(clips.silences, tmp_path / "work", edit=EditSpec.model_validate(edit))

    integrated, true_peak = loudness(result.path)

    assert integrated == pytest.approx(-14.0, abs=1.0), result.render.data
    assert true_peak <= -1.0, result.render.data
    if mode is not None:
        assert result.render.data["loudness"] == mode


@ONE_FFMPEG
async def test_music_is_at_least_8_db_quieter_under_speech_than_between_it(
    clips: Clips, tmp_path: Path
) -> None:
    def music_alone(draft: Draft) -> Draft:
        # Hear the music bed by itself, still ducked where the source speaks.
        tracks = tuple(
            track
            for track in draft.tracks
            if track["tt"] != AUDIO_TRACK or track["m"]["kind"] == "music"
        )
        return Draft(tracks=tracks, duration_ms=draft.duration_ms, metadata=draft.metadata)

    edit = EditSpec(music="lofi", normalize=False)

    result = await produce(clips.silences, tmp_path / "work", edit=edit, adjust=music_alone)

    bed = music_of(result.draft)
    assert bed is not None and bed.duck_db is not None
    assert len(bed.duck_under) == len(SPEECH)
    for (start, end), (spoken_start, spoken_end) in zip(bed.duck_under, SPEECH, strict=True):
        assert (start, end) == pytest.approx((spoken_start, spoken_end), abs=0.05)
    rate, audio = samples(result.path)
    # away from the ramps and from the music's own fades (first 1 s, last 2 s)
    under_speech = level_db(audio, rate, [(1.05, 1.95), (4.05, 5.95)])
    between = level_db(audio, rate, [(2.55, 3.7), (6.55, 7.95)])
    assert between - under_speech >= 8.0


async def test_a_title_changes_its_area_and_nothing_else(wide: Path, tmp_path: Path) -> None:
    title = EditSpec.model_validate({"title": {"text": "Urban Dreams", "duration": 2.0}})

    plain = await produce(wide, tmp_path / "plain")
    titled = await produce(wide, tmp_path / "titled", edit=title)

    width, height, before = frame(plain.path, 1.0)
    _, _, after = frame(titled.path, 1.0)  # the title's midpoint
    text_height = round(0.07 * height)
    middle = height // 2
    title_rows = range(middle - text_height // 2, middle + text_height // 2)
    title_columns = range(width // 4, 3 * width // 4)
    above = range(0, middle - 2 * text_height)
    below = range(middle + 2 * text_height, height)
    assert region_difference(before, after, width, title_rows, title_columns) > 20
    for rows in (above, below):
        assert region_difference(before, after, width, rows, range(width)) < 1.5


async def test_each_line_of_a_title_is_centred(wide: Path, tmp_path: Path) -> None:
    # A short line over a long one: centred, the short line's ink is about the middle
    # column (drawn as one block left-aligned, as FFmpeg < 6.1 would, it sits at the left).
    text = "I\nWWWWWWWWWW"
    title = EditSpec.model_validate({"title": {"text": text, "duration": 2.0, "size": 0.1}})

    plain = await produce(wide, tmp_path / "plain")
    titled = await produce(wide, tmp_path / "titled", edit=title)

    width, height, before = frame(plain.path, 1.0)
    _, _, after = frame(titled.path, 1.0)
    line_height = round(0.1 * height)
    middle = height // 2

    def ink_columns(rows: range) -> list[int]:
        return [
            column
            for column in range(width)
            if sum(abs(before[row * width + column] - after[row * width + column]) for row in rows)
            > 40 * len(rows)
        ]

    short = ink_columns(range(middle - line_height, middle - line_height // 4))
    long = ink_columns(range(middle + line_height // 4, middle + line_height))
    assert short and long
    assert abs((min(short) + max(short)) / 2 - width / 2) < width * 0.05
    assert abs((min(long) + max(long)) / 2 - width / 2) < width * 0.05
    assert max(short) - min(short) < (max(long) - min(long)) / 3


async def test_a_title_with_quotes_colons_percents_backslashes_and_cjk_renders(
    wide: Path, tmp_path: Path
) -> None:
    # a work folder whose name needs escaping in the filter graph, too
    work = tmp_path / "we:ird, [dir]; it's 100%"
    text = 'It\'s "quoted" “curly”: 100% \\back\\slash 城市之梦'

    plain = await produce(wide, work / "plain")
    titled = await produce(wide, work / "titled", edit=EditSpec(title=text))

    width, height, before = frame(plain.path, 1.5)
    _, _, after = frame(titled.path, 1.5)
    rows = range(height // 3, 2 * height // 3)
    assert region_difference(before, after, width, rows, range(width)) > 5


async def test_chinese_titles_are_drawn_with_real_glyphs(wide: Path, tmp_path: Path) -> None:
    # Missing glyphs would all be the same empty box: the order of the characters would
    # not change the picture.
    def title(text: str) -> EditSpec:
        return EditSpec.model_validate({"title": {"text": text, "size": 0.12}})

    one = await produce(wide, tmp_path / "one", edit=title("城市之梦"))
    other = await produce(wide, tmp_path / "other", edit=title("梦之市城"))

    width, height, first = frame(one.path, 1.5)
    _, _, second = frame(other.path, 1.5)
    text_height = round(0.12 * height)
    rows = range((height - text_height) // 2, (height + text_height) // 2)
    columns = range(width // 2 - 2 * text_height, width // 2 + 2 * text_height)
    assert region_difference(first, second, width, rows, columns) > 20


@ONE_FFMPEG
async def test_a_vertical_blur_fit_shows_the_whole_source_frame(
    bordered: Path, tmp_path: Path
) -> None:
    edit = EditSpec(aspect="9:16", fit="blur")
    export = ExportSpec(resolution="1080p", quality=Quality.LOW)

    result = await produce(bordered, tmp_path / "work", edit=edit, export=export)

    video = result.probe.video
    assert video is not None and (video.width, video.height) == (1080, 1920)
    width, height, pixels = frame(result.path, 1.0, "rgb24")

    def colour(x: int, y: int) -> tuple[int, int, int]:
        offset = (y * width + x) * 3
        red, green, blue = pixels[offset : offset + 3]
        return red, green, blue

    # the source, 320x180, fits the width: 1080x608, centred in 1920 rows
    top, bottom, middle = (1920 - 608) // 2, (1920 + 608) // 2, height // 2
    inset = round(BORDER * 1080 / 320 / 2)  # half way into a side
    sides = {
        "red": colour(width // 2, top + inset),
        "green": colour(width // 2, bottom - inset),
        "blue": colour(inset, middle),
        "yellow": colour(width - inset, middle),
    }
    assert _looks(sides["red"], (255, 0, 0)), sides
    assert _looks(sides["green"], (0, 255, 0)), sides
    assert _looks(sides["blue"], (0, 0, 255)), sides
    assert _looks(sides["yellow"], (255, 255, 0)), sides


@pytest.mark.parametrize("container", ["mp4", "mkv", "ts"])
async def test_cuts_keep_exactly_their_frames_where_the_source_is_read_by_seeking(
    numbered: Path, tmp_path: Path, container: str
) -> None:
    # gaps of 2.7 s and 3.4 s are read over by seeking (MP4, Matroska); 0.1 s is not
    source = tmp_path / f"numbered.{container}"
    subprocess.run(
        [str(TOOL_FFMPEG), "-loglevel", "error", "-i", str(numbered), "-c", "copy", str(source)],
        check=True,
    )
    kept = [Segment(0.5, 1.5), Segment(4.2, 5.0), Segment(5.1, 5.6), Segment(9.0, 10.4)]
    facts = probe(source)
    draft = build_draft(
        kept,
        source=SourceFacts(source.name, 12.0, 176, 32, 30.0, True, format=facts.format_name),
        edit=EditSpec(),
        export=ExportSpec(quality=Quality.LOW),
    )

    result = await produce(source, tmp_path / "work", adjust=lambda _: draft)

    expected = [*range(15, 45), *range(126, 150), *range(153, 168), *range(270, 312)]
    assert frame_numbers(result.path) == expected
    audio = result.probe.audio
    assert audio is not None and audio.duration is not None
    assert audio.duration == pytest.approx(len(expected) / 30, abs=0.05)


async def test_a_webm_export_is_vp9_and_opus(clips: Clips, tmp_path: Path) -> None:
    export = ExportSpec(format="webm", resolution="240p", quality=Quality.LOW)

    result = await produce(
        clips.basic, tmp_path / "work", edit=EditSpec(aspect="1:1", fit="pad"), export=export
    )

    video, audio = result.probe.video, result.probe.audio
    assert result.path.name == "render.webm"
    assert video is not None and audio is not None
    assert (video.codec, video.width, video.height, video.pix_fmt) == ("vp9", 240, 240, "yuv420p")
    assert (audio.codec, audio.sample_rate, audio.channels) == ("opus", 48000, 2)
    assert video.duration == pytest.approx(3.0, abs=0.05)
    outbox.verify(result.path, result.draft)


async def test_a_gif_export_is_small_silent_and_at_most_15_fps(
    clips: Clips, tmp_path: Path
) -> None:
    export = ExportSpec(format="gif", resolution="1080p")

    result = await produce(
        clips.basic, tmp_path / "work", edit=EditSpec(music="lofi", title="GIF"), export=export
    )

    video = result.probe.video
    assert result.path.name == "render.gif"
    assert video is not None and result.probe.audio is None
    assert video.codec == "gif"
    assert (video.width, video.height) == (480, 360)
    assert video.duration == pytest.approx(3.0, abs=0.1)
    frames = _frame_count(result.path)
    assert frames / 3.0 <= 15.0
    outbox.verify(result.path, result.draft)


@ONE_FFMPEG
async def test_a_speed_change_keeps_sound_and_picture_together(
    clips: Clips, tmp_path: Path
) -> None:
    result = await produce(clips.basic, tmp_path / "work", edit=EditSpec(speed=1.5))

    video, audio = result.probe.video, result.probe.audio
    assert video is not None and audio is not None
    assert result.draft.duration == pytest.approx(2.0)
    assert video.duration == pytest.approx(2.0, abs=1 / 25 + 0.001)
    assert audio.duration == pytest.approx(video.duration, abs=0.05)
    assert video.fps == pytest.approx(25.0)


@ONE_FFMPEG
async def test_fades_start_and_end_in_black(wide: Path, tmp_path: Path) -> None:
    edit = EditSpec(fade_in=1.0, fade_out=1.0)

    result = await produce(wide, tmp_path / "work", edit=edit)

    width, height, first = frame(result.path, 0.0)
    _, _, middle = frame(result.path, 1.5)
    everything = (range(height), range(width))
    black = bytes(len(first))
    assert region_difference(first, black, width, *everything) < 20
    assert region_difference(middle, black, width, *everything) > 60


@ONE_FFMPEG
async def test_muted_without_music_has_no_sound_and_with_music_has_music(
    clips: Clips, tmp_path: Path
) -> None:
    silent = await produce(clips.basic, tmp_path / "silent", edit=EditSpec(mute=True))
    music = await produce(clips.basic, tmp_path / "music", edit=EditSpec(mute=True, music="calm"))

    assert silent.probe.audio is None
    assert music.probe.audio is not None
    outbox.verify(silent.path, silent.draft)
    outbox.verify(music.path, music.draft)


@ONE_FFMPEG
async def test_text_can_ask_for_the_export_format(clips: Clips, tmp_path: Path) -> None:
    result = await produce(
        clips.no_audio,
        tmp_path / "work",
        instructions=("export as webm",),
        export=ExportSpec(resolution="240p", quality=Quality.LOW),
    )

    assert result.path.name == "render.webm"
    assert result.probe.video is not None and result.probe.video.codec == "vp9"


def _looks(found: tuple[int, int, int], expected: tuple[int, int, int]) -> bool:
    return all(abs(value - target) < 70 for value, target in zip(found, expected, strict=True))


def _frame_count(path: Path) -> int:
    with av.open(str(path)) as container:
        return sum(1 for _ in container.decode(video=0))
